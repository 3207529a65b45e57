"""The dev container (.devcontainer/devcontainer.json): uv, Docker in Docker, the forwarded
ports, and kind, ctlptl, Tilt and kubectl at versions.yaml's pins from its post-create step
(`invoke setup --cluster-tools`: `invoke cluster.tools`), run here with the downloads recorded."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile

import pytest
from invoke import Context
from invoke.exceptions import Exit

from ops import cluster
from ops.tools import REPO_ROOT

DEVCONTAINER = json.loads((REPO_ROOT / ".devcontainer" / "devcontainer.json").read_text())


def test_it_runs_docker_in_docker_and_python_as_the_project_pins_it():
    assert any("/docker-in-docker:" in feature for feature in DEVCONTAINER["features"])
    version = re.search(r"python:\d+-(3\.\d+)-", DEVCONTAINER["image"])[1]
    assert (REPO_ROOT / ".python-version").read_text().strip().startswith(version)


def test_post_create_syncs_the_lock_and_installs_the_pinned_cluster_tools():
    steps = DEVCONTAINER["postCreateCommand"].split(" && ")
    assert steps[1:] == [
        "~/.local/bin/uv sync --locked",
        "~/.local/bin/uv run invoke setup --cluster-tools",
    ]
    assert DEVCONTAINER["postStartCommand"] == "~/.local/bin/uv run invoke doctor"


def test_it_forwards_the_app_the_ingress_tilt_metrics_and_traces():
    tiltfile = (REPO_ROOT / "Tiltfile").read_text()
    forwarded = {int(port) for port in re.findall(r"port_forward\((\d+),", tiltfile)}
    wanted = {8000, cluster.ingress_port(), 10350} | forwarded  # 10350: Tilt's UI
    assert set(DEVCONTAINER["forwardPorts"]) == wanted
    assert set(DEVCONTAINER["portsAttributes"]) == {str(port) for port in wanted}


@pytest.mark.parametrize("machine", ["linux-amd64", "linux-arm64", "darwin-arm64"])
def test_cluster_tools_installs_exactly_the_versions_yaml_pins(tmp_path, monkeypatch, machine):
    fetched = []

    def fetch(url, sha256):
        fetched.append((url, sha256))
        name = next(n for n, t in cluster.VERSIONS["tools"].items() if url in str(t))
        if not url.endswith(".tar.gz"):
            return f"#!/bin/sh\necho {name}\n".encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            body = f"#!/bin/sh\necho {name}\n".encode()
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
            archive.addfile(tarfile.TarInfo("LICENSE"), io.BytesIO(b""))
        return buffer.getvalue()

    monkeypatch.setattr(cluster, "fetch", fetch)
    system, arch = machine.split("-")
    monkeypatch.setattr(cluster.platform, "system", lambda: system.title())
    monkeypatch.setattr(cluster.platform, "machine", lambda: {"amd64": "x86_64"}.get(arch, arch))
    cluster.tools(Context(), bin_dir=str(tmp_path))
    pins = cluster.VERSIONS["tools"]
    assert fetched == [
        (tool["downloads"][machine]["url"], tool["downloads"][machine]["sha256"])
        for tool in pins.values()
    ]
    assert {"kind", "ctlptl", "tilt", "kubectl"} == set(pins)
    for name in pins:
        assert (tmp_path / name).read_text() == f"#!/bin/sh\necho {name}\n"
        assert os.access(tmp_path / name, os.X_OK)


def test_a_platform_without_pins_is_refused_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster.platform, "system", lambda: "Plan9")
    monkeypatch.setattr(cluster.platform, "machine", lambda: "mips")
    with pytest.raises(Exit, match=r"versions\.yaml has no kind for plan9-mips"):
        cluster.tools(Context(), bin_dir=str(tmp_path))
