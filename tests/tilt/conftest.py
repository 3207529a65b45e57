"""Fixtures for the local-cluster loop: the executed Tiltfile, the rendered local overlay,
kind-config.yaml, the Dockerfile, and fake docker/kind/kubectl/tilt executables."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import yaml

from ops import cluster, k8s
from ops.tools import REPO_ROOT
from tests.dockerfile import Stage, parse_dockerfile
from tests.fakes import FakeTools, install

from .tiltfile_runner import TiltRun, run_tiltfile

FAKE_TOOLS = Path(__file__).with_name("fake_tools.py")
TOOLS = ("docker", "kind", "kubectl", "tilt")


@pytest.fixture(scope="session")
def tilt_run() -> TiltRun:
    """The Tiltfile as `tilt up` on the kind cluster's context executes it."""
    return run_tiltfile(REPO_ROOT)


@pytest.fixture(scope="session")
def local_overlay() -> list[dict]:
    """The local overlay rendered independently of the Tiltfile."""
    return k8s.documents(k8s.render(k8s.LOCAL_OVERLAY))


@pytest.fixture(scope="session")
def kind_config() -> dict:
    return cluster.load_kind_config()


@pytest.fixture(scope="session")
def dockerfile_stages() -> list[Stage]:
    return parse_dockerfile((REPO_ROOT / "Dockerfile").read_text())


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fake_tools(tmp_path, monkeypatch) -> FakeTools:
    """Fakes on an otherwise empty PATH, a fresh machine state (Docker running, recent
    tools, nothing created), and ops.cluster pointed at free ports, sufficient inotify
    limits and a local copy of the ingress manifest, so no test touches the real host."""
    initial_state = {
        "docker_running": True,
        "versions": {"kind": "0.32.0", "kubectl": "1.34.1", "tilt": "0.37.6"},
        "registry": None,
        "clusters": {},
    }
    fakes = install(tmp_path, FAKE_TOOLS, TOOLS, initial_state)
    monkeypatch.setenv("PATH", str(fakes.bin_dir))
    for name, value in fakes.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KIND_CLUSTER_NAME", raising=False)

    # The real kind-config.yaml, with its host port swapped for one that is free here.
    config = cluster.load_kind_config()
    for node in config["nodes"]:
        for mapping in node.get("extraPortMappings", []):
            mapping["hostPort"] = free_port()
    kind_config_copy = tmp_path / "kind-config.yaml"
    kind_config_copy.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(cluster, "KIND_CONFIG", kind_config_copy)
    monkeypatch.setattr(cluster, "REGISTRY_PORT", free_port())

    inotify = tmp_path / "inotify"
    inotify.mkdir()
    for name, minimum in cluster.INOTIFY_MINIMUMS.items():
        (inotify / name).write_text(f"{minimum}\n")
    monkeypatch.setattr(cluster, "INOTIFY_DIR", inotify)

    # A stand-in for Contour's release manifest: the objects `up` waits for.
    manifest = tmp_path / "contour.yaml"
    manifest.write_text(
        yaml.safe_dump_all(
            [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "projectcontour"}},
                _workload("Deployment", "contour", cluster.CONTOUR_IMAGE),
                _workload("DaemonSet", "envoy", "docker.io/envoyproxy/envoy:v1.35.10"),
            ]
        )
    )
    monkeypatch.setattr(cluster, "CONTOUR_MANIFEST_URL", manifest.as_uri())
    monkeypatch.setattr(cluster, "CONTOUR_MANIFEST_SHA256", _sha256(manifest))
    return fakes


def _workload(kind: str, name: str, image: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "projectcontour"},
        "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}},
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
