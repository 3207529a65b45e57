"""A world for release tests: a clone of this repository with a bare git remote, and fake
docker, kustomize, kubectl, terraform, doctl, aws and argocd first on PATH.

The clone holds the working tree as it is now (tracked and new files), on `develop` and
`main` like a real project; Argo CD's repoURL points at the bare remote. Tasks run in it
with `python -m invoke`, so they use the clone's own ops/, invoke.yaml and kustomize/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops import k8s
from ops.tools import REPO_ROOT, uv
from tests.fakes import FakeTools, install

FAKE_CLOUD = Path(__file__).with_name("fake_cloud.py")
TOOLS = ("docker", "kustomize", "kubectl", "terraform", "doctl", "aws", "argocd")
DO_REPOSITORY = "registry.digitalocean.com/todo/todo"  # what the DO overlays name already
AWS_REPOSITORY = "210987654321.dkr.ecr.eu-central-1.amazonaws.com/todo"
ECR_PASSWORD = "eyJwYXlsb2FkIjoiZmFrZSJ9"
# Git without the user's or the machine's settings.
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def run_git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="session")
def seed(tmp_path_factory) -> Path:
    """This repository's working tree as one commit, on main and develop."""
    seed = tmp_path_factory.mktemp("seed")
    listed = run_git(REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (seed / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, seed / name)
    run_git(seed, "init", "--quiet", "--initial-branch=main")
    run_git(seed, "add", "--all")
    run_git(
        seed, "-c", "user.name=Seed", "-c", "user.email=seed@example.com", "commit", "-qm", "Seed"
    )
    run_git(seed, "branch", "develop")
    return seed


@dataclass
class World:
    work: Path
    remote: Path
    fakes: FakeTools
    env: dict[str, str]

    def invoke(self, *args: str, **settings: str) -> subprocess.CompletedProcess:
        """Run an invoke task in the clone; settings become INVOKE_RELEASE_<KEY> variables."""
        env = {**self.env, **{f"INVOKE_RELEASE_{k.upper()}": v for k, v in settings.items()}}
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def git(self, *args: str) -> str:
        return run_git(self.work, *args)

    def remote_git(self, *args: str) -> str:
        return run_git(self.remote, *args)

    def overlay(self, cloud: str, env: str, ref: str = "") -> str:
        path = f"kustomize/overlays/{cloud}/{env}/kustomization.yaml"
        return self.git("show", f"{ref}:{path}") if ref else (self.work / path).read_text()

    def commit_change(self, path: str = "app/config/urls.py", branch: str = "develop") -> str:
        """A code change on `branch`, pushed: its commit."""
        self.git("switch", "--quiet", branch)
        with (self.work / path).open("a") as file:
            file.write(f"# change {len(self.git('log', '--oneline').splitlines())}\n")
        self.git("commit", "--quiet", "-am", f"Change {path}")
        self.git("push", "--quiet", "origin", branch)
        return self.git("rev-parse", "HEAD")

    def merge_develop_into_main(self) -> None:
        self.git("switch", "--quiet", "main")
        self.git("merge", "--quiet", "--no-edit", "origin/develop")
        self.git("push", "--quiet", "origin", "main")

    def snapshot(self) -> dict:
        """Everything a release could change: refs, files, registry, logins, Argo CD."""
        state = self.fakes.state
        return {
            "remote refs": self.remote_git("for-each-ref", "--format=%(refname) %(objectname)"),
            "local refs": self.git("for-each-ref", "--format=%(refname) %(objectname)"),
            "head": self.git("rev-parse", "HEAD"),
            "status": self.git("status", "--porcelain", "--ignored"),
            "registry": state["registry"],
            "clusters": state["clusters"],
        }


def command(world: World, call: dict) -> str:
    """A recorded call as one line; SHAs, digests and paths replaced by stable names."""
    line = " ".join([call["tool"], *call["args"]]).replace(str(world.work), "<work>")
    line = re.sub(r"sha256:[0-9a-f]{64}", "<digest>", line)
    line = re.sub(r"\b[0-9a-f]{40}\b", "<sha>", line)
    return re.sub(r"/\S*/todo-[a-z]+-\w+/\S*", "<scratch>", line)


def commands(world: World) -> list[str]:
    """The commands run since the last look, oldest first (see command())."""
    return [command(world, call) for call in world.fakes.calls()]


def application(cloud: str, env: str, remote: Path, previous: str) -> dict:
    return {
        "remote": str(remote),
        "branch": "develop" if env == "stage" else "main",
        "path": f"kustomize/overlays/{cloud}/{env}",
        "behaviour": "healthy",
        "previous_revision": previous,
        "previous_image": f"{DO_REPOSITORY}:0.1.0",
    }


@pytest.fixture
def world(tmp_path, seed) -> World:
    remote, work = tmp_path / "remote.git", tmp_path / "work"
    run_git(tmp_path, "clone", "--quiet", "--bare", str(seed), str(remote))
    run_git(tmp_path, "clone", "--quiet", "--branch", "develop", str(remote), str(work))
    run_git(work, "config", "user.name", "Release Tester")
    run_git(work, "config", "user.email", "release@example.com")
    # Argo CD pulls from this test's remote: the repository a release must push to.
    source = work / "kustomize" / "argocd" / "base" / "source.yaml"
    source.write_text(re.sub(r"repoURL: .*", f"repoURL: file://{remote}", source.read_text()))
    run_git(work, "commit", "--quiet", "-am", "Argo CD pulls the test remote")
    run_git(work, "push", "--quiet", "origin", "HEAD:develop", "HEAD:main")
    run_git(work, "fetch", "--quiet")
    previous = run_git(work, "rev-parse", "HEAD")

    state = {
        "docker_engine": True,
        "registry": {"logged_in": [], "images": {}},
        "do": {"token": True, "email": "release@example.com"},
        "aws": {"credentials": True, "id": "210987654321", "password": ECR_PASSWORD},
        "terraform_outputs": {"image_repository": AWS_REPOSITORY},
        "clusters": {
            f"todo-{env}": {
                f"todo-{cloud}-{env}": application(cloud, env, remote, previous)
                for cloud in ("do", "aws")
            }
            for env in ("stage", "prod")
        },
        # `kustomize build` renders for real, with the renderer this machine has.
        "real_renderer": list(k8s.renderer()),
        "real_path": os.environ["PATH"],
    }
    fakes = install(tmp_path / "fakes", FAKE_CLOUD, TOOLS, state)
    # Only the fakes, git, uv and a shell: a real docker, doctl or aws stays out of reach.
    real_tools = tmp_path / "real-tools"
    real_tools.mkdir()
    for tool, path in {"git": "git", "bash": "bash", "sh": "sh", "uv": uv()}.items():
        (real_tools / tool).symlink_to(shutil.which(path))
    env = {
        **os.environ,
        **GIT_ENV,
        **fakes.env,
        "PATH": f"{fakes.bin_dir}{os.pathsep}{real_tools}",
        "INVOKE_RELEASE_IMAGE_REPOSITORY_DO": DO_REPOSITORY,
    }
    for variable in ("DOCKER_HOST", "KUBECONFIG", "VIRTUAL_ENV"):
        env.pop(variable, None)
    return World(work, remote, fakes, env)
