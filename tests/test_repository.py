"""Repository-wide checks that keep main green: lint, format, and no missing migrations."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )


def test_ruff_lint_is_clean():
    result = run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run(sys.executable, "-m", "ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_missing_migrations():
    result = run(
        sys.executable,
        "app/manage.py",
        "makemigrations",
        "--check",
        "--dry-run",
        DJANGO_SETTINGS_MODULE="config.settings.test",
    )
    assert result.returncode == 0, result.stdout + result.stderr
