"""`invoke image.build` and `image.smoke` against a fake `docker` that records its calls.

The real smoke run needs a Docker engine (CI runs `invoke image.smoke` for real); these
tests check what the tasks ask Docker for, and what they say when Docker is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from ops import image
from ops.tools import REPO_ROOT
from tests.fakes import install

FAKE_DOCKER = Path(__file__).with_name("fake_docker.py")
ENGINE = {"server": "28.3.0", "client": "28.3.0", "buildx": True, "bridge": True}


@pytest.fixture
def fake_docker(tmp_path):
    """Run an invoke task with the fake docker first on PATH; return (result, fakes)."""

    def run(*task: str, path: str = "", **engine):
        directory = tmp_path / "fakes"
        directory.mkdir()
        fakes = install(directory, FAKE_DOCKER, ["docker"], ENGINE | engine)
        env = {
            **os.environ,
            **fakes.env,
            "PATH": path or f"{fakes.bin_dir}{os.pathsep}{os.environ['PATH']}",
        }
        env.pop("DOCKER_HOST", None)
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *task],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return result, fakes

    return run


def docker_builds(fakes) -> list[list[str]]:
    return [call["args"] for call in fakes.calls() if call["args"][:1] == ["build"]]


def git(*args: str) -> str:
    """git's output, or "" when it fails (e.g. no tag on HEAD)."""
    return subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def test_build_labels_the_image_with_this_commit(fake_docker):
    # Read around the run: in a shared working tree someone may commit meanwhile.
    commits = {git("rev-parse", "HEAD")}
    result, fakes = fake_docker("image.build")
    commits.add(git("rev-parse", "HEAD"))
    assert result.returncode == 0, result.stderr
    [build] = docker_builds(fakes)
    options = dict(arg.removeprefix("--build-arg=").split("=", 1) for arg in build[2:-1])
    commit = options["REVISION"]
    assert commit in commits
    assert fakes.state["buildkit"] == "1"
    assert build[-1] == str(REPO_ROOT)
    assert options["--target"] == "runtime"
    assert options["--tag"] == f"todo:{git('rev-parse', '--short', commit)}"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    release_tag = git("describe", "--tags", "--exact-match", commit)
    assert options["VERSION"] == (release_tag or f"{project['version']}+g{commit[:12]}")
    assert "--network" not in options
    assert "123 MB" in result.stdout


def test_build_uses_the_host_network_when_the_engine_has_no_bridge(fake_docker):
    result, fakes = fake_docker(
        "image.build", "--target", "dev", "--tag", "todo:mine", bridge=False
    )
    assert result.returncode == 0, result.stderr
    [build] = docker_builds(fakes)
    assert {"--network=host", "--target=dev", "--tag=todo:mine"} <= set(build)


def test_smoke_says_clearly_that_no_engine_is_reachable(fake_docker):
    result, fakes = fake_docker("image.smoke", server="")
    assert result.returncode == 1
    assert "no Docker engine is reachable at the default socket" in result.stderr
    assert "Is the docker daemon running?" in result.stderr
    assert "Fix: start Docker" in result.stderr
    assert docker_builds(fakes) == []


def test_build_without_buildx_on_a_current_cli_names_the_fix(fake_docker):
    result, fakes = fake_docker("image.build", buildx=False)
    assert result.returncode == 127
    assert "`docker buildx` is missing (docker 28.3.0)" in result.stderr
    assert docker_builds(fakes) == []


def test_build_with_a_pre_23_cli_uses_its_builtin_buildkit(fake_docker):
    result, fakes = fake_docker("image.build", buildx=False, server="20.10.24", client="20.10.24")
    assert result.returncode == 0, result.stderr
    assert len(docker_builds(fakes)) == 1
    assert fakes.state["buildkit"] == "1"


def test_missing_docker_gives_the_install_fix(fake_docker, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result, _ = fake_docker("image.smoke", path=str(empty))
    assert result.returncode == 127
    assert "`docker` is not installed. Fix: install Docker" in result.stderr


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:acme/todo.git", "https://github.com/acme/todo"),
        ("ssh://git@github.com/acme/todo.git", "https://github.com/acme/todo"),
        ("https://token:x-oauth@github.com/acme/todo.git", "https://github.com/acme/todo"),
        ("https://gitlab.example.com/group/todo/", "https://gitlab.example.com/group/todo"),
        ("/srv/git/todo.git", ""),
        ("", ""),
    ],
)
def test_source_label_is_a_browsable_url_without_credentials(remote, url):
    assert image.https_url(remote) == url


def test_rebuild_check_finds_the_dependency_step_in_buildkit_output():
    log = textwrap.dedent(f"""\
        #9 [builder 2/2] RUN --mount=type=cache,target=/root/.cache/uv     {image.DEPENDENCY_STEP}
        #9 CACHED
        #12 [runtime 2/3] COPY app/ /app/
        #12 DONE 0.1s
        """)
    assert image.dependency_step_cached(log)
    assert not image.dependency_step_cached(log.replace("#9 CACHED", "#9 0.812 Resolved 60"))
    assert not image.dependency_step_cached("#1 [internal] load build definition\n")


def test_smoke_database_url_replaces_only_the_database_name():
    assert (
        image.database_url("postgres://postgres:pw@db.internal:5433/postgres?sslmode=require", "x")
        == "postgres://postgres:pw@db.internal:5433/x?sslmode=require"
    )
