"""Helpers shared by every task collection: where the repo is, and tool preflight."""

from __future__ import annotations

import shutil
from pathlib import Path

from invoke.exceptions import Exit

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = REPO_ROOT / "app"


def require(tool: str, fix: str) -> str:
    """Return the path of `tool` on PATH, or stop the task with one line saying how to get it."""
    path = shutil.which(tool)
    if path is None:
        raise Exit(f"error: `{tool}` is not installed. Fix: {fix}", code=127)
    return path
