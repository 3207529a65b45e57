"""kind-config.yaml, and the registry wiring `invoke up` adds to it, checked offline.

The field lists are kind's v1alpha4 config types (kind v0.32.0,
pkg/apis/config/v1alpha4/types.go): kind decodes the file strictly, so an unknown or
misspelled field stops `kind create cluster`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib

import kubernetes_validate
import yaml

from ops import cluster, k8s
from ops.tools import REPO_ROOT

CLUSTER_FIELDS = {
    "kind", "apiVersion", "name", "nodes", "networking", "featureGates", "runtimeConfig",
    "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches", "containerdConfigPatchesJSON6902",
}  # fmt: skip
NODE_FIELDS = {
    "role", "image", "labels", "extraMounts", "extraPortMappings",
    "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902",
}  # fmt: skip
PORT_MAPPING_FIELDS = {"containerPort", "hostPort", "listenAddress", "protocol"}
TILT_UI_PORT = 10350
WEB_PORT_FORWARD = 8000


def port_mappings(config: dict) -> list[dict]:
    return [m for node in config["nodes"] for m in node.get("extraPortMappings", [])]


def test_is_a_kind_cluster_config_with_only_known_fields(kind_config):
    assert kind_config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert kind_config["kind"] == "Cluster"
    assert set(kind_config) <= CLUSTER_FIELDS
    for node in kind_config["nodes"]:
        assert set(node) <= NODE_FIELDS
        assert node["role"] in ("control-plane", "worker")
        for mapping in node.get("extraPortMappings", []):
            assert set(mapping) <= PORT_MAPPING_FIELDS


def test_names_the_cluster_the_tiltfile_expects(kind_config):
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", kind_config["name"])
    assert cluster.kube_context(kind_config) == "kind-todo"


def test_pins_the_node_image_by_digest(kind_config):
    for node in kind_config["nodes"]:
        assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", node["image"])
    assert len({node["image"] for node in kind_config["nodes"]}) == 1


def test_node_kubernetes_is_one_the_manifests_and_ingress_controller_support(kind_config):
    major, minor, _ = cluster.node_kubernetes_version(kind_config)
    assert f"{major}.{minor}" in k8s.KUBERNETES_VERSIONS
    assert minor in cluster.CONTOUR_KUBERNETES_MINORS


def test_the_local_overlay_is_valid_for_the_nodes_kubernetes(kind_config, local_overlay):
    major, minor, _ = cluster.node_kubernetes_version(kind_config)
    assert k8s.schema_problems(local_overlay, [f"{major}.{minor}"]) == []


def test_host_ports_are_unique_loopback_and_clear_of_the_other_local_ports(kind_config):
    mappings = port_mappings(kind_config)
    host_ports = [m["hostPort"] for m in mappings]
    others = {cluster.REGISTRY_PORT, TILT_UI_PORT, WEB_PORT_FORWARD}
    assert len(host_ports) == len(set(host_ports)) and not set(host_ports) & others
    for mapping in mappings:
        assert ipaddress.ip_address(mapping["listenAddress"]).is_loopback
        assert mapping.get("protocol", "TCP") == "TCP"
        assert 1024 < mapping["hostPort"] < 65536  # no root needed to publish it


def test_the_ingress_controllers_port_80_is_published(kind_config):
    # Contour's Envoy DaemonSet listens on hostPort 80 of the (single) node.
    assert [m["containerPort"] for m in port_mappings(kind_config)] == [80]
    assert len(kind_config["nodes"]) == 1


def test_containerd_reads_registry_hosts_where_up_writes_them(kind_config):
    [patch] = kind_config["containerdConfigPatches"]
    registry = tomllib.loads(patch)["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert registry == {"config_path": "/etc/containerd/certs.d"}
    assert cluster.registry_config_dir(kind_config) == registry["config_path"]


def test_hosts_toml_sends_localhost_pulls_to_the_registry_container():
    [(server, options)] = tomllib.loads(cluster.registry_hosts_toml())["host"].items()
    assert options == {}
    assert server == f"http://{cluster.REGISTRY_NAME}:{cluster.REGISTRY_CONTAINER_PORT}"
    run = cluster.registry_run_command()
    assert run[run.index("--name") + 1] == cluster.REGISTRY_NAME
    assert run[run.index("--publish") + 1] == (
        f"127.0.0.1:{cluster.REGISTRY_PORT}:{cluster.REGISTRY_CONTAINER_PORT}"
    )
    assert re.fullmatch(r"registry:[\d.]+@sha256:[0-9a-f]{64}", run[-1])


def test_registry_configmap_tells_tilt_the_published_registry(kind_config):
    configmap = yaml.safe_load(cluster.registry_hosting_configmap())
    major, minor, _ = cluster.node_kubernetes_version(kind_config)
    kubernetes_validate.validate(configmap, f"{major}.{minor}", strict=True)
    assert configmap["metadata"] == {"name": "local-registry-hosting", "namespace": "kube-public"}
    hosting = yaml.safe_load(configmap["data"]["localRegistryHosting.v1"])
    assert hosting == {
        "host": f"localhost:{cluster.REGISTRY_PORT}",
        "help": "https://kind.sigs.k8s.io/docs/user/local-registry/",
    }


def test_the_ingress_controller_is_pinned_to_one_release():
    assert re.fullmatch(r"v\d+\.\d+\.\d+", cluster.CONTOUR_VERSION)
    assert f"/{cluster.CONTOUR_VERSION}/" in cluster.CONTOUR_MANIFEST_URL
    assert cluster.CONTOUR_IMAGE.endswith(f":{cluster.CONTOUR_VERSION}")
    assert re.fullmatch(r"[0-9a-f]{64}", cluster.CONTOUR_MANIFEST_SHA256)


def test_up_creates_the_cluster_from_this_file():
    assert cluster.KIND_CONFIG == REPO_ROOT / "kind-config.yaml"
