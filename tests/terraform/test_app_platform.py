"""DigitalOcean stage on App Platform runs what kustomize/overlays/do/stage runs: each process
with the same command from the same DOCR image, with the same setting names (and the same
values where they do not name the host), secrets encrypted, migrate before each deployment."""

from __future__ import annotations

import pytest
import yaml

from ops import k8s
from ops.tools import REPO_ROOT
from tests.terraform.conftest import named, parse

from .test_contract import contract_secret, one, resource

STACK = "do/stacks/app-platform"
# Not on App Platform: it has no Prometheus to scrape the Celery exporter (its own metrics
# and alerts cover the app there).
KUBERNETES_ONLY = {"celery-exporter"}
# Same name, a value of the platform's own: where traces go (an in-cluster collector on DOKS).
PLATFORM_VALUES = {"OTEL_EXPORTER_OTLP_ENDPOINT"}


def app_spec() -> dict:
    (spec,) = resource(STACK, "digitalocean_app", "this")["spec"]
    return spec


def components() -> dict[str, dict]:
    """App Platform's components by name, each with `component`: service, worker or job."""
    spec = app_spec()
    return {
        c["name"]: {**c, "component": kind}
        for kind in ("service", "worker", "job")
        for c in spec.get(kind, [])
    }


def example_domain() -> str:
    return parse(REPO_ROOT / "terraform" / STACK / "stage.tfvars.example")["domain"]


def app_environment(component: dict) -> dict[str, str]:
    """Every variable a component gets: the app-wide settings and secrets, then its own."""
    values = named(STACK, "locals")
    app_wide = {**values["settings"], **dict.fromkeys(values["secrets"], "(secret)")}
    own = {env["key"]: env["value"] for env in component.get("env", [])}
    resolved = {
        key: value.replace("${var.domain}", example_domain()).replace("${var.environment}", "stage")
        for key, value in app_wide.items()
    }
    return resolved | own


def overlay_processes(do_overlays) -> dict[str, tuple[str, dict[str, str]]]:
    """do/stage's processes: (command, variables) each, the Secret's keys as "(secret)"."""
    objects = do_overlays["stage"]
    config = next(
        o["data"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("todo-config")
    )
    _, secret_keys = contract_secret()
    processes = {}
    for workload in (o for o in objects if o["kind"] in ("Deployment", "Job")):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        sources = {
            k8s.generated_base_name_of(ref["name"])
            for source in container.get("envFrom", [])
            for ref in source.values()
        }
        variables = config.copy() if "todo-config" in sources else {}
        if "todo-secrets" in sources:
            variables |= dict.fromkeys(secret_keys, "(secret)")
        variables |= {e["name"]: e["value"] for e in container.get("env", [])}
        command = " ".join(container["command"] + container.get("args", []))
        processes[workload["metadata"]["name"]] = (command, variables)
    return processes


def test_each_process_has_the_same_command_and_variables(do_overlays):
    processes = overlay_processes(do_overlays)
    apps = components()
    assert set(processes) - KUBERNETES_ONLY == set(apps)
    for name, component in apps.items():
        command, variables = processes[name]
        assert component["run_command"] == command, name
        environment = app_environment(component)
        assert set(environment) == set(variables), f"{name}: {set(environment) ^ set(variables)}"
        differ = {k for k in environment if environment[k] != variables[k]} - PLATFORM_VALUES
        assert differ == set(), f"{name}: {differ} differ"


def test_same_image_secrets_encrypted_and_migrate_before_each_deployment(do_overlays):
    overlay = yaml.safe_load(
        (REPO_ROOT / "kustomize/overlays/do/stage/kustomization.yaml").read_text()
    )
    (entry,) = [i for i in overlay["images"] if i["name"] == "todo"]
    _, _, repository = entry["newName"].split("/", 2)  # registry.digitalocean.com/<registry>/
    for name, component in components().items():
        assert component["image"] == [
            {key: f"${{local.image.{key}}}" for key in ("registry_type", "repository", "tag")}
        ], name
    image = named(STACK, "locals")["image"]
    assert image["registry_type"] == "DOCR"
    assert image["repository"] == "${var.image_repository}"
    assert named(STACK, "variable")["image_repository"]["default"] == repository
    migrate = components()["migrate"]
    assert (migrate["component"], migrate["kind"]) == ("job", "PRE_DEPLOY")
    assert components()["beat"]["instance_count"] == 1, "one scheduler"
    web = one(do_overlays["stage"], "Deployment", "web")
    (port,) = [
        p for p in web["spec"]["template"]["spec"]["containers"][0]["ports"] if p["name"] == "http"
    ]
    assert components()["web"]["http_port"] == port["containerPort"]


def test_secrets_are_encrypted_env_and_the_databases_are_bound():
    spec = app_spec()
    dynamic = {block["env"]["for_each"]: block["env"]["content"][0] for block in spec["dynamic"]}
    assert dynamic["${local.secrets}"]["type"] == "SECRET"
    assert dynamic["${local.settings}"]["type"] == "GENERAL"
    _, secret_keys = contract_secret()
    assert set(named(STACK, "locals")["secrets"]) == secret_keys
    bound = {db["engine"]: db for db in spec["database"]}
    assert set(bound) == {"PG", "VALKEY"} and all(db["production"] for db in bound.values())
    # The infra stack's database firewalls admit the app (its app_id) besides the cluster.
    infra = named("do/stacks/infra", "module")
    assert (
        infra["postgres"]["trusted_app_ids"]
        == infra["valkey"]["trusted_app_ids"]
        == ("${var.trusted_app_ids}")
    )


@pytest.mark.parametrize("path", ["service", "worker", "job"])
def test_releases_own_the_image_tags_and_terraform_the_rest(path):
    ignored = resource(STACK, "digitalocean_app", "this")["lifecycle"][0]["ignore_changes"]
    for index in range(len(app_spec().get(path, []))):
        for field in ("tag", "digest"):
            assert f"${{spec[0].{path}[{index}].image[0].{field}}}" in ignored
