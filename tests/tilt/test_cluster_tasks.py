"""`invoke up` and `invoke down` against fake docker, kind, kubectl and tilt on PATH.

The fakes record every command and keep the state they pretend to manage, so these
tests see what `up` would run on a real machine: the first run creates the registry,
the cluster, the node registry config, the network link, the registry ConfigMap and
the ingress controller in kind's documented order; a second run creates nothing; a
missing or old tool, a stopped Docker, low inotify limits or a busy port stop it
before anything changes, each with a one-line fix.
"""

from __future__ import annotations

import socket

import pytest
import yaml
from invoke import Context
from invoke.exceptions import Exit

import tasks
from ops import cluster

# Commands that only look: everything else a run records is a change.
READ_ONLY = (
    ("docker", "info"),
    ("docker", "inspect"),
    ("kind", "version"),
    ("kind", "get"),
    ("kubectl", "version"),
    ("tilt", "version"),
)


def is_change(call: dict) -> bool:
    tool, args = call["tool"], call["args"]
    if (tool, args[0]) in READ_ONLY:
        return False
    if tool == "docker" and args[:1] == ["exec"] and "cat" in args:
        return False
    return not (tool == "kubectl" and ("get" in args or "rollout" in args))


def command(call: dict) -> str:
    return " ".join([call["tool"], *call["args"]])


def changes(calls: list[dict]) -> list[str]:
    return [command(call) for call in calls if is_change(call)]


def up(**options) -> None:
    cluster.up(Context(), **options)


def expected_first_run() -> list[str]:
    port = cluster.REGISTRY_PORT
    hosts_dir = f"/etc/containerd/certs.d/localhost:{port}"
    return [
        f"docker run --detach --restart=always --publish 127.0.0.1:{port}:5000 "
        f"--network bridge --name kind-registry {cluster.REGISTRY_IMAGE}",
        f"kind create cluster --name todo --config {cluster.KIND_CONFIG} --wait 120s",
        f"docker exec todo-control-plane mkdir -p {hosts_dir}",
        f"docker exec --interactive todo-control-plane cp /dev/stdin {hosts_dir}/hosts.toml",
        "docker network connect kind kind-registry",
        "kubectl --context kind-todo apply -f -",
        "kubectl --context kind-todo apply --server-side -f -",
    ]


def test_up_and_down_are_top_level_invoke_tasks():
    assert tasks.ns.tasks["up"] is cluster.up
    assert tasks.ns.tasks["down"] is cluster.down


def test_first_up_creates_everything_in_kinds_documented_order(fake_tools):
    up(no_tilt=True)

    assert changes(fake_tools.calls()) == expected_first_run()
    state = fake_tools.state
    assert state["registry"]["running"] and "kind" in state["registry"]["networks"]
    assert state["created_from_config"] == cluster.load_kind_config()
    todo = state["clusters"]["todo"]
    hosts = f"/etc/containerd/certs.d/localhost:{cluster.REGISTRY_PORT}/hosts.toml"
    assert todo["files"] == {hosts: '[host."http://kind-registry:5000"]\n'}
    configmap = todo["objects"]["ConfigMap/kube-public/local-registry-hosting"]
    hosting = yaml.safe_load(configmap["data"]["localRegistryHosting.v1"])
    assert hosting["host"] == f"localhost:{cluster.REGISTRY_PORT}"
    contour = todo["objects"]["Deployment/projectcontour/contour"]
    assert contour["spec"]["template"]["spec"]["containers"][0]["image"] == cluster.CONTOUR_IMAGE


def test_second_up_creates_nothing(fake_tools, capsys):
    up(no_tilt=True)
    fake_tools.calls()
    after_first = fake_tools.state
    capsys.readouterr()

    up(no_tilt=True)

    # Only the ConfigMap is re-applied (kubectl apply is itself idempotent), and kubectl
    # reports it unchanged; the ingress manifest is not even downloaded again.
    assert changes(fake_tools.calls()) == ["kubectl --context kind-todo apply -f -"]
    assert "configmap/local-registry-hosting unchanged" in capsys.readouterr().out
    assert fake_tools.state == after_first


def test_up_repairs_only_what_is_missing(fake_tools):
    up(no_tilt=True)
    fake_tools.calls()
    registry = fake_tools.state["registry"]
    fake_tools.update(registry=registry | {"running": False})

    up(no_tilt=True)
    assert changes(fake_tools.calls()) == [
        "docker start kind-registry",
        "kubectl --context kind-todo apply -f -",
    ]

    fake_tools.update(registry=None)  # deleted by hand: recreated and reconnected
    up(no_tilt=True)
    assert changes(fake_tools.calls()) == [
        expected_first_run()[0],
        "docker network connect kind kind-registry",
        "kubectl --context kind-todo apply -f -",
    ]


def test_up_hands_over_to_tilt_on_the_kind_context_with_tiltfile_args(fake_tools):
    cluster.up(Context(remainder="--only-web --web-port 8001"))

    last = fake_tools.calls()[-1]
    assert command(last) == "tilt up --context kind-todo -- --only-web --web-port 8001"


@pytest.mark.parametrize("tool", ["docker", "kind", "kubectl", "tilt"])
def test_a_missing_tool_stops_up_with_its_install_link(fake_tools, capsys, tool):
    fake_tools.remove(tool)

    with pytest.raises(Exit, match="nothing was changed"):
        up()

    problems = capsys.readouterr().err.splitlines()
    assert problems == [
        f"error: `{tool}` is not installed. Fix: install it: {cluster.INSTALL_URLS[tool]}"
    ]
    assert changes(fake_tools.calls()) == []


def test_tilt_is_not_needed_with_no_tilt(fake_tools):
    fake_tools.remove("tilt")
    up(no_tilt=True)
    assert changes(fake_tools.calls()) == expected_first_run()


def test_docker_not_running(fake_tools, capsys):
    fake_tools.update(docker_running=False)

    with pytest.raises(Exit):
        up()

    assert capsys.readouterr().err.splitlines() == [
        "error: Docker is not running (`docker info` failed). "
        "Fix: start Docker Desktop, or `sudo systemctl start docker` on Linux"
    ]
    assert changes(fake_tools.calls()) == []


def test_every_too_old_tool_is_reported_at_once(fake_tools, capsys):
    fake_tools.update(versions={"kind": "0.31.0", "kubectl": "1.32.9", "tilt": "0.34.2"})

    with pytest.raises(Exit, match="3 problem"):
        up()

    assert capsys.readouterr().err.splitlines() == [
        f"error: kind 0.31.0 is too old, 0.32.0 or newer is needed. "
        f"Fix: upgrade it: {cluster.INSTALL_URLS['kind']}",
        f"error: kubectl 1.32.9 is too old, 1.33.0 or newer is needed. "
        f"Fix: upgrade it: {cluster.INSTALL_URLS['kubectl']}",
        f"error: tilt 0.34.2 is too old, 0.35.0 or newer is needed. "
        f"Fix: upgrade it: {cluster.INSTALL_URLS['tilt']}",
    ]
    assert changes(fake_tools.calls()) == []


def test_low_inotify_limits_give_the_sysctl_fix(fake_tools, capsys):
    (cluster.INOTIFY_DIR / "max_user_watches").write_text("8192\n")
    (cluster.INOTIFY_DIR / "max_user_instances").write_text("128\n")

    with pytest.raises(Exit):
        up()

    assert capsys.readouterr().err.splitlines() == [
        "error: inotify limits too low for kind and Tilt (max_user_watches=8192, "
        "max_user_instances=128). Fix: sudo sysctl fs.inotify.max_user_watches=524288 "
        "fs.inotify.max_user_instances=512 (persist it in /etc/sysctl.d/99-kind.conf)"
    ]


def test_a_busy_ingress_port_stops_up_before_anything_is_created(fake_tools, capsys):
    port = cluster.host_ports(cluster.load_kind_config())[0]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(Exit):
            up()

    [problem] = capsys.readouterr().err.splitlines()
    assert problem.startswith(f"error: port {port} on 127.0.0.1 is in use")
    assert "Fix: " in problem and "kind-config.yaml" in problem
    assert changes(fake_tools.calls()) == []


def test_an_ingress_manifest_with_another_checksum_is_not_applied(fake_tools, monkeypatch):
    monkeypatch.setattr(cluster, "CONTOUR_MANIFEST_SHA256", "0" * 64)

    with pytest.raises(Exit, match="expected 0000"):
        up(no_tilt=True)

    assert "kubectl --context kind-todo apply --server-side -f -" not in changes(fake_tools.calls())


def test_down_deletes_cluster_and_registry_then_finds_nothing(fake_tools):
    up(no_tilt=True)
    fake_tools.calls()

    cluster.down(Context())
    assert changes(fake_tools.calls()) == [
        "kind delete cluster --name todo",
        "docker rm --force --volumes kind-registry",
    ]
    assert fake_tools.state["clusters"] == {} and fake_tools.state["registry"] is None

    cluster.down(Context())
    assert changes(fake_tools.calls()) == []
