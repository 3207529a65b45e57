"""What two or more task collections share: where the repo is, pinned downloads, git, uv,
checking that a tool is installed, running a command as releases show it, asking before a
change, and checkov."""

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml
from invoke.exceptions import Exit

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = REPO_ROOT / "app"
UV_FIX = "install uv (https://docs.astral.sh/uv/getting-started/installation/)"
CHECKOV = "checkov==3.3.30"  # a uv tool, never in the app's venv: it pins many packages
VERSIONS = yaml.safe_load((REPO_ROOT / "versions.yaml").read_text())


def download(url: str, sha256: str, fix: str = "check your network or proxy") -> str:
    """A text file pinned in versions.yaml, refused unless its checksum matches."""
    return fetch(url, sha256, fix).decode()


def fetch(url: str, sha256: str, fix: str = "check your network or proxy") -> bytes:
    """A file pinned in versions.yaml, refused unless its checksum matches; when it cannot be
    fetched, the task stops naming the URL and `fix`."""
    try:
        with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (pinned https URLs)
            body = response.read()
    except OSError as error:  # no network, DNS, a proxy, a timeout, an HTTP error
        reason = getattr(error, "reason", error)
        raise Exit(f"error: could not fetch {url} ({reason}). Fix: {fix}", code=1) from None
    if (digest := hashlib.sha256(body).hexdigest()) != sha256:
        raise Exit(
            f"error: {url} has sha256 {digest}, versions.yaml expects {sha256}. Fix: check "
            "your network or proxy; if upstream republished it, update versions.yaml",
            code=1,
        )
    return body


def require(tool: str, fix: str) -> str:
    """Return the path of `tool` on PATH, or stop the task with one line saying how to get it."""
    if path := shutil.which(tool):
        return path
    raise Exit(f"error: `{tool}` is not installed. Fix: {fix}", code=127)


def run(c, command, dry=False, failure="", **kwargs):
    """A command, printed as typed (`would run:` when a dry run skips it), its output captured;
    with `failure`, a failure stops with `error: <failure>: <what the command said>`."""
    command = command if isinstance(command, str) else shlex.join(command)
    shown = "  would run: {command}" if dry else "  $ {command}"
    kwargs = {"hide": "both", "warn": True, "in_stream": False, **kwargs}
    result = c.run(command, dry=dry, echo=True, echo_format=shown, **kwargs)
    if failure and result.failed:
        raise Exit(f"error: {failure}: {said(result)}", code=1)
    return result


def said(result) -> str:
    """What a failed command said, in one line: its first error line, else its last one."""
    lines = (result.stderr.strip() or result.stdout.strip() or f"exit {result.exited}").split("\n")
    return next((line for line in lines if re.match(r"(fatal|error)\b", line, re.I)), lines[-1])


def git(*args: str, check: bool = True) -> str:
    """git's output in the repository; on failure stop with what git said, or "" (check=False)."""
    result = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True)  # noqa: S603, S607
    if result.returncode and check:
        raise Exit(f"error: git {' '.join(args)} failed: {result.stderr.strip()}", code=1)
    return "" if result.returncode else result.stdout.strip()


def confirm(question: str) -> bool:
    """Ask on the terminal; True only for 'yes'. Without a terminal, stop and point at --yes."""
    if not sys.stdin.isatty():
        raise Exit("error: no terminal to confirm on. Fix: run again with --yes", code=1)
    return input(f"{question} Type 'yes' to go on: ").strip() == "yes"


def uv() -> str:
    """The uv binary: the one running us (`uv run` sets $UV, past any pyenv shim), else PATH's."""
    return os.environ.get("UV") or require("uv", UV_FIX)


def run_checkov(framework: str, *target: str) -> list[dict]:
    """checkov's JSON report parts (one per framework run) for `--directory D` or `--file F`;
    RuntimeError when checkov did not run or could not parse a file: a broken scan never passes."""
    command = [uv(), "tool", "run", "--quiet", "--from", CHECKOV, "checkov", *target]
    command += ["--framework", framework, "--output", "json", "--compact", "--skip-download"]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # else checkov calls its vendor's API first
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov did not run (exit {result.returncode}):\n{result.stderr}")
    parts = report if isinstance(report := json.loads(result.stdout), list) else [report]
    if broken := [p["summary"] for p in parts if p.get("summary", {}).get("parsing_errors")]:
        raise RuntimeError(f"checkov could not parse some files: {broken}")
    return parts
