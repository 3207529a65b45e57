"""`invoke image.build` and `image.smoke` against a fake `docker` that records its calls.

The real smoke run needs a Docker engine (CI runs `invoke image.smoke` for real); these
tests check what the tasks ask Docker for, and what they say when Docker is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib

import pytest

from ops import image
from ops.tools import REPO_ROOT

# Answers like the real CLI's; anything else exits 97 so an unexpected call fails the test.
FAKE_DOCKER = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "buildkit": os.environ.get("DOCKER_BUILDKIT")}}) + "\\n")
server, client = os.environ.get("FAKE_DOCKER_SERVER", ""), os.environ["FAKE_DOCKER_CLIENT"]
if args == ["version", "--format", "{{{{.Server.Version}}}}"]:
    if not server:
        sys.exit("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                 "Is the docker daemon running?")
    print(server)
elif args == ["version", "--format", "{{{{.Client.Version}}}}"]:
    print(client)
elif args == ["buildx", "version"]:
    if os.environ.get("FAKE_DOCKER_BUILDX") != "1":
        sys.exit("docker: unknown command: docker buildx")
    print("github.com/docker/buildx v0.25.0")
elif args == ["network", "inspect", "bridge"]:
    if os.environ.get("FAKE_DOCKER_BRIDGE") != "1":
        sys.exit("Error response from daemon: network bridge not found")
    print("[]")
elif args[:1] == ["build"]:
    print("#12 DONE 0.1s")
elif args[:3] == ["image", "inspect", "--format"]:
    print("123456789")
else:
    sys.exit(97)
"""


@pytest.fixture
def fake_docker(tmp_path):
    """Run an invoke task with the fake docker first on PATH; return (result, docker calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    log = tmp_path / "docker.log"

    def run(*task: str, path: str = "", **answers: str):
        env = {
            **os.environ,
            "PATH": path or f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_DOCKER_LOG": str(log),
            "FAKE_DOCKER_CLIENT": "28.3.0",
            **{f"FAKE_DOCKER_{key.upper()}": value for key, value in answers.items()},
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
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return result, calls

    return run


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
    result, calls = fake_docker("image.build", server="28.3.0", buildx="1", bridge="1")
    commits.add(git("rev-parse", "HEAD"))
    assert result.returncode == 0, result.stderr
    [build] = [call for call in calls if call["args"][:1] == ["build"]]
    args = dict(arg.removeprefix("--build-arg=").split("=", 1) for arg in build["args"][2:-1])
    commit = args["REVISION"]
    assert commit in commits
    assert build["buildkit"] == "1"
    assert build["args"][-1] == str(REPO_ROOT)
    assert "--target=runtime" in build["args"]
    assert f"--tag=todo:{git('rev-parse', '--short', commit)}" in build["args"]
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    release_tag = git("describe", "--tags", "--exact-match", commit)
    assert args["VERSION"] == (release_tag or f"{project['version']}+g{commit[:12]}")
    assert "--network=host" not in build["args"]
    assert "123 MB" in result.stdout


def test_build_uses_the_host_network_when_the_engine_has_no_bridge(fake_docker):
    result, calls = fake_docker(
        "image.build", "--target", "dev", "--tag", "todo:mine", server="28.3.0", buildx="1"
    )
    assert result.returncode == 0, result.stderr
    [build] = [call["args"] for call in calls if call["args"][:1] == ["build"]]
    assert {"--network=host", "--target=dev", "--tag=todo:mine"} <= set(build)


def test_smoke_says_clearly_that_no_engine_is_reachable(fake_docker):
    result, calls = fake_docker("image.smoke")
    assert result.returncode == 1
    assert "no Docker engine is reachable at the default socket" in result.stderr
    assert "Is the docker daemon running?" in result.stderr
    assert "Fix: start Docker" in result.stderr
    assert all(call["args"][:1] != ["build"] for call in calls)


def test_build_without_buildx_on_a_current_cli_names_the_fix(fake_docker):
    result, calls = fake_docker("image.build", server="28.3.0")
    assert result.returncode == 127
    assert "`docker buildx` is missing (docker 28.3.0)" in result.stderr
    assert all(call["args"][:1] != ["build"] for call in calls)


def test_build_with_a_pre_23_cli_uses_its_builtin_buildkit(fake_docker):
    result, calls = fake_docker("image.build", server="20.10.24", client="20.10.24")
    assert result.returncode == 0, result.stderr
    assert [call["buildkit"] for call in calls if call["args"][:1] == ["build"]] == ["1"]


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
