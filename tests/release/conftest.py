"""A world for release tests: a clone of this repository with a bare git remote, and the fake
cloud tools (fake_cloud.py) first on PATH.

The clone holds the working tree as it is now (tracked and new files), on `develop` and `main`
like a real project, and Argo CD's repoURL points at the bare remote. Tasks run in it with
`python -m invoke`, so they use the clone's own ops/, invoke.yaml and kustomize/.
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

DO_REPOSITORY = "registry.digitalocean.com/todo/todo"  # what the DO overlays name already
AWS_REPOSITORY = "210987654321.dkr.ecr.eu-central-1.amazonaws.com/todo"
# The GitHub repository CD builds in, and its Deploy workflow's identity on stage's branch.
SOURCE = "https://github.com/acme/todo"
CD_IDENTITY = f"{SOURCE}/.github/workflows/deploy.yml@refs/heads/develop"
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # no user settings


def run_git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="session")
def seed(tmp_path_factory) -> Path:
    """This repository's working tree as one commit, on main and develop."""
    seed = tmp_path_factory.mktemp("seed")
    listed = run_git(REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        if (REPO_ROOT / name).is_file():
            (seed / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, seed / name)
    run_git(seed, "init", "--quiet", "--initial-branch=main")
    run_git(seed, "add", "--all")
    run_git(seed, "-c", "user.name=Seed", "-c", "user.email=s@example.com", "commit", "-qm", "Seed")
    run_git(seed, "branch", "develop")
    return seed


@dataclass
class World:
    work: Path
    remote: Path
    fakes: FakeTools
    env: dict[str, str]

    def invoke(self, *args: str, **settings: str) -> subprocess.CompletedProcess:
        """An invoke task in the clone; settings become INVOKE_RELEASE_<KEY> variables."""
        env = self.env | {f"INVOKE_RELEASE_{k.upper()}": v for k, v in settings.items()}
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def git(self, *args: str) -> str:
        return run_git(self.work, *args)

    def remote_git(self, *args: str) -> str:
        return run_git(self.remote, *args)

    def overlay(self, cloud: str, env: str) -> str:
        return (self.work / f"kustomize/overlays/{cloud}/{env}/kustomization.yaml").read_text()

    def commit_change(self, path: str = "app/config/urls.py", branch: str = "develop") -> str:
        """A change of `path` on `branch`, pushed: its commit."""
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
        """Everything a release could change: refs, files, the registry."""
        return {
            "remote": self.remote_git("for-each-ref", "--format=%(refname) %(objectname)"),
            "local": self.git("for-each-ref", "--format=%(refname) %(objectname)"),
            "status": self.git("status", "--porcelain", "--ignored"),
            "images": self.fakes.state["registry"]["images"],
        }

    def calls(self, *tools: str) -> list[str]:
        """The commands run since the last look (of `tools` only, if named), as lines."""
        calls = self.fakes.calls()
        lines = [
            " ".join([c["tool"], *c["args"]]) for c in calls if c["tool"] in (tools or c["tool"])
        ]
        return [line.replace(str(self.work), "<work>") for line in lines]


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

    def app(cloud: str, env: str) -> dict:
        branch, path = (
            ("develop" if env == "stage" else "main"),
            f"kustomize/overlays/{cloud}/{env}",
        )
        return {"remote": str(remote), "branch": branch, "path": path, "behaviour": "healthy"}

    state = {
        "registry": {"logged_in": [], "images": {}},
        "do_token": True,
        "aws": {"password": "eyJwYXlsb2FkIjoiZmFrZSJ9"},
        "clusters": {
            f"todo-{env}": {f"todo-{cloud}-{env}": app(cloud, env) for cloud in ("do", "aws")}
            for env in ("stage", "prod")
        },
        "renderer": list(k8s.renderer()),  # `kubectl kustomize` renders for real
        "sigstore": {},
        "cosign_identity": CD_IDENTITY,  # whom cosign signs as: CD, as the workflow runs it
        "vcs_source": SOURCE,  # the checkout buildx builds, as its provenance names it
    }
    fakes = install(
        tmp_path / "fakes",
        Path(__file__).with_name("fake_cloud.py"),
        ("docker", "doctl", "aws", "kubectl", "curl", "cosign"),
        state,
    )
    # Only the fakes, git, uv and a shell: a real docker, doctl or aws stays out of reach.
    real_tools = tmp_path / "real-tools"
    real_tools.mkdir()
    for tool, path in {"git": "git", "bash": "bash", "sh": "sh", "uv": uv()}.items():
        (real_tools / tool).symlink_to(shutil.which(path))
    env = os.environ | GIT_ENV | fakes.env
    env |= {"PATH": f"{fakes.bin_dir}{os.pathsep}{real_tools}"}
    env |= {"INVOKE_RELEASE_IMAGE_REPOSITORY_DO": DO_REPOSITORY}
    env |= {"INVOKE_RELEASE_IMAGE_REPOSITORY_AWS": AWS_REPOSITORY}
    env |= {"INVOKE_IMAGE_SIGN": "1", "INVOKE_IMAGE_SOURCE": SOURCE}  # as the Deploy workflow
    for variable in ("DOCKER_HOST", "KUBECONFIG", "VIRTUAL_ENV"):
        env.pop(variable, None)
    return World(work, remote, fakes, env)
