"""The Tiltfile's structure, read without running Tilt: valid Starlark whose overlay, cluster,
resources, image and debug ports are the ones the repository defines. CI's `cluster` job runs
the real `tilt ci` (`invoke cluster.check`)."""

from __future__ import annotations

import ast

import pytest
import starlark

from ops import cluster, k8s
from ops.tools import REPO_ROOT
from tests.dockerfile import context_inputs, parse_dockerfile

SOURCE = (REPO_ROOT / "Tiltfile").read_text()
# The Tiltfile keeps to the part of Starlark that is also Python syntax, so Python's own
# parser can list its calls and their literal arguments.
TREE = ast.parse(SOURCE)
CONSTANTS = {
    target.id: node.value
    for node in TREE.body
    if isinstance(node, ast.Assign)
    for target in node.targets
    if isinstance(target, ast.Name)
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def literal(node: ast.expr):
    """A literal argument, or the literal a top-level name is assigned."""
    return ast.literal_eval(CONSTANTS.get(getattr(node, "id", None), node))


def calls(function: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(TREE)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == function
    ]


def argument(call: ast.Call, keyword: str):
    return next(literal(k.value) for k in call.keywords if k.arg == keyword)


@pytest.fixture(scope="module")
def overlay() -> list[dict]:
    return k8s.documents(k8s.render(k8s.LOCAL_OVERLAY))


@pytest.fixture(scope="module")
def dockerfile():
    return parse_dockerfile((REPO_ROOT / "Dockerfile").read_text())


def containers(overlay: list[dict], name: str) -> list[dict]:
    [workload] = [
        o for o in overlay if o["kind"] in WORKLOAD_KINDS and o["metadata"]["name"] == name
    ]
    return workload["spec"]["template"]["spec"]["containers"]


def test_is_valid_starlark_with_nothing_to_lint():
    module = starlark.parse("Tiltfile", SOURCE, starlark.Dialect.extended())
    assert [str(lint) for lint in module.lint()] == []


def test_deploys_the_local_overlay_to_the_cluster_of_cluster_yaml():
    [kustomize] = calls("kustomize")
    assert literal(kustomize.args[0]) == f"kustomize/overlays/{k8s.LOCAL_OVERLAY}"
    [read] = calls("read_yaml_stream")
    assert (REPO_ROOT / literal(read.args[0])) == cluster.CLUSTER_FILE


def test_requires_the_tilt_that_versions_yaml_names_as_minimum():
    [settings] = calls("version_settings")
    minimum = cluster.VERSIONS["tools"]["tilt"]["minimum"]
    assert argument(settings, "constraint") == ">=" + minimum.removeprefix("v")


def test_every_workload_of_the_overlay_is_a_resource_and_dependencies_exist(overlay):
    names = {literal(call.args[0]) for call in calls("k8s_resource") if call.args}
    workloads = {o["metadata"]["name"] for o in overlay if o["kind"] in WORKLOAD_KINDS}
    assert names == workloads
    # Kinds the Tiltfile keeps out of `setup`: every workload kind the overlay uses.
    assert {o["kind"] for o in overlay if o["kind"] in WORKLOAD_KINDS} <= set(
        literal(CONSTANTS["NOT_SETUP"])
    )
    resources = names | {"setup"} | {literal(c.args[0]) for c in calls("local_resource")}
    for call in calls("k8s_resource") + calls("local_resource"):
        for keyword in call.keywords:
            if keyword.arg == "resource_deps":
                assert set(literal(keyword.value)) <= resources


def test_builds_the_image_the_app_workloads_run_from_the_dev_target(overlay, dockerfile):
    [build] = calls("docker_build")
    image = literal(build.args[0])
    for name in ("web", "worker", "beat", "celery-exporter", "migrate"):
        assert {c["image"] for c in containers(overlay, name)} == {image}
    assert argument(build, "target") in {stage.name for stage in dockerfile}
    assert (REPO_ROOT / argument(build, "dockerfile")).is_file()
    assert context_inputs(dockerfile, "dev") <= set(argument(build, "only"))


def test_debug_runs_web_and_worker_under_debugpy_on_the_documented_ports(overlay):
    """`tilt up -- --debug` sets DEBUGPY_PORT, which app/bin/web and worker read, and forwards
    that port of those containers, the ones docs/dev-loop.md tells debuggers to attach to."""
    ports = literal(CONSTANTS["DEBUG_PORTS"].body)
    assert set(ports) == {"web", "worker"}
    for name in ports:
        [container] = containers(overlay, name)
        script = REPO_ROOT / "app" / container["command"][0].removeprefix("/app/")
        assert "DEBUGPY_PORT" in script.read_text()
    guide = (REPO_ROOT / "docs" / "dev-loop.md").read_text()
    assert all(f"localhost:{port}" in guide for port in ports.values())
    forwarded = {
        literal(node.args[0])
        for node in ast.walk(TREE)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and getattr(node.func.value, "id", None) == "DEBUG_FORWARDS"
    }
    assert forwarded == set(ports), "each of the two resources forwards its own port"
