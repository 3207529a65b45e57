"""versions.yaml, the one place for what the cluster loop downloads, and what reads it: the
pins are well-formed, the CI `cluster` job installs them with `invoke cluster.tools` (run in
tests/tilt/test_devcontainer.py), docs/cluster.md's install table lists exactly these tools,
and cluster.yaml's images are pinned to a Kubernetes the manifests and the ingress controller
support."""

from __future__ import annotations

import re

import pytest
import yaml

from ops import cluster
from ops.tools import REPO_ROOT
from tests.k8s.checks import KUBERNETES_VERSIONS

VERSIONS = cluster.VERSIONS
TOOLS = VERSIONS["tools"]
SHA256 = re.compile(r"[0-9a-f]{64}")
VERSION = re.compile(r"v\d+\.\d+\.\d+")
PLATFORMS = {"linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"}
CI = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())


def as_tuple(version: str) -> tuple[int, ...]:
    return tuple(map(int, version[1:].split(".")))


@pytest.mark.parametrize("name", TOOLS)
def test_each_tool_is_pinned_with_a_checksum_per_platform(name):
    tool = TOOLS[name]
    assert VERSION.fullmatch(tool["version"]) and VERSION.fullmatch(tool["minimum"])
    assert as_tuple(tool["minimum"]) <= as_tuple(tool["version"])
    assert tool["install"].startswith("https://")
    assert set(tool["downloads"]) == PLATFORMS
    for download in tool["downloads"].values():
        assert download["url"].startswith("https://")
        assert tool["version"][1:] in download["url"]
        assert SHA256.fullmatch(download["sha256"])
    assert len({d["sha256"] for d in tool["downloads"].values()}) == len(PLATFORMS)


def test_manifests_and_crds_are_pinned_to_a_release_with_checksums():
    for manifest in VERSIONS["manifests"].values():
        assert manifest["url"].startswith("https://")
        assert f"/{manifest['version']}/" in manifest["url"]
        assert SHA256.fullmatch(manifest["sha256"])
    for crds in VERSIONS["crds"].values():
        assert f"/{crds['version']}/" in crds["source"] and crds["source"].endswith("/")
        assert crds["sha256"] and all(map(SHA256.fullmatch, crds["sha256"].values()))
    assert VERSIONS["crds"]["argo-cd"]["version"] == VERSIONS["manifests"]["argo-cd"]["version"]


def test_the_ci_job_installs_these_tools_raises_the_inotify_limits_and_runs_the_check():
    """As the dev container installs the tools; the limits are the ones the preflight asks for."""
    job = CI["jobs"]["cluster"]
    scripts = [step.get("run", "") for step in job["steps"]]
    assert any(s.startswith("uv run invoke cluster.tools ") for s in scripts)
    assert job["runs-on"] == "ubuntu-latest"
    assert "uv run invoke cluster.check" in scripts[-1]
    for name, minimum in cluster.INOTIFY_MINIMUMS.items():
        assert f"fs.inotify.{name}={minimum}" in "\n".join(scripts)


def test_the_install_table_in_docs_is_versions_yaml():
    lines = (REPO_ROOT / "docs" / "cluster.md").read_text().splitlines()
    start = lines.index("| tool | version (CI) | minimum | get it |") + 2  # after the rule
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    assert lines[start:end] == [
        f"| {name} | {tool['version']} | {tool['minimum']} | {tool['install']} |"
        for name, tool in TOOLS.items()
    ], "docs/cluster.md's install table differs from versions.yaml's tools"


def test_cluster_yaml_pins_its_images_to_a_supported_kubernetes():
    config = cluster.cluster_config()
    assert re.fullmatch(r"registry:[\d.]+@sha256:[0-9a-f]{64}", config["Registry"]["image"])
    assert config["Cluster"]["registry"] == config["Registry"]["name"]
    [node] = config["Cluster"]["kindV1Alpha4Cluster"]["nodes"]
    minor = re.fullmatch(r"kindest/node:v(\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}", node["image"])[1]
    assert minor in KUBERNETES_VERSIONS
    assert minor in VERSIONS["manifests"]["contour"]["kubernetes"]
    assert all(m["listenAddress"] == "127.0.0.1" for m in node["extraPortMappings"])
    assert config["Registry"]["listenAddress"] == "127.0.0.1"
