"""Helpers shared by every task collection: where the repo is, and tool preflight."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml
from invoke.exceptions import Exit

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = REPO_ROOT / "app"
VERSIONS = yaml.safe_load((REPO_ROOT / "versions.yaml").read_text())


def download(url: str, sha256: str) -> str:
    """A text file pinned in versions.yaml, refused unless its checksum matches."""
    return fetch(url, sha256).decode()


def fetch(url: str, sha256: str) -> bytes:
    """A file pinned in versions.yaml, refused unless its checksum matches."""
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (pinned https URLs)
        body = response.read()
    if (digest := hashlib.sha256(body).hexdigest()) != sha256:
        raise Exit(
            f"error: {url} has sha256 {digest}, versions.yaml expects {sha256}. Fix: check "
            "your network or proxy; if upstream republished it, update versions.yaml",
            code=1,
        )
    return body


def require(tool: str, fix: str) -> str:
    """Return the path of `tool` on PATH, or stop the task with one line saying how to get it."""
    path = shutil.which(tool)
    if path is None:
        raise Exit(f"error: `{tool}` is not installed. Fix: {fix}", code=127)
    return path


def confirm(question: str) -> bool:
    """Ask on the terminal; True only for 'yes'. Without a terminal, stop and point at --yes."""
    if not sys.stdin.isatty():
        raise Exit("error: no terminal to confirm on. Fix: run again with --yes", code=1)
    return input(f"{question} Type 'yes' to go on: ").strip() == "yes"


UV_FIX = "install uv (https://docs.astral.sh/uv/getting-started/installation/)"
# checkov pins many packages of its own, so it runs as a uv tool, never in the app's venv.
CHECKOV = "checkov==3.3.30"


def find_uv() -> str | None:
    """The uv binary: the one running us (`uv run` sets $UV, past any pyenv shim), else PATH's."""
    return os.environ.get("UV") or shutil.which("uv")


def uv() -> str:
    """Like find_uv, but stop the task with its fix when uv is missing."""
    return find_uv() or require("uv", UV_FIX)


def run_checkov(framework: str, *target: str) -> list[dict]:
    """Run checkov's `framework` checks on `target` (`--directory D` or `--file F`).

    Returns the JSON report's parts (one per framework run). Raises RuntimeError when
    checkov did not run or could not parse a file, so a broken scan never passes.
    """
    command = [uv(), "tool", "run", "--quiet", "--from", CHECKOV, "checkov", *target]
    command += ["--framework", framework, "--output", "json", "--compact", "--skip-download"]
    # BC_SKIP_MAPPING: checkov would otherwise call its vendor's API first.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov did not run (exit {result.returncode}):\n{result.stderr}")
    report = json.loads(result.stdout)
    parts = report if isinstance(report, list) else [report]
    for part in parts:
        if part.get("summary", {}).get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse some files: {part['summary']}")
    return parts


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not listen on host:port now (bound the way servers bind)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False
