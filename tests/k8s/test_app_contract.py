"""The manifests meet the app where docs/contract.md says: the commands and probe
targets exist in app/, gunicorn binds the probed port and drains within the grace period,
and every environment variable the settings read is provided or has a documented
default, in every overlay."""

from __future__ import annotations

import ast
import re
import runpy
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ops import k8s
from ops.tools import APP_DIR, REPO_ROOT

from .conftest import APP_WORKLOADS, find, one, pod_specs

SETTINGS_SOURCES = [
    *sorted((APP_DIR / "config" / "settings").glob("*.py")),
    APP_DIR / "config" / "gunicorn.py",
    APP_DIR / "config" / "celery.py",
    APP_DIR / "observability" / "tracing.py",
]
# Where the settings table lives.
SETTINGS_DOCS = (REPO_ROOT / "docs" / "settings.md",)

overlays = pytest.mark.parametrize("overlay", k8s.OVERLAYS)


# --- What the settings read -----------------------------------------------------------------


def _string_argument(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and getattr(node.value, "id", "") == "os"
    )


def variables_read(source: str) -> set[str]:
    """Names read through django-environ (`env(...)`, `env.bool(...)`, ...) or os.environ."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            function = node.func
            environ_call = isinstance(function, ast.Name) and function.id == "env"
            environ_call |= (
                isinstance(function, ast.Attribute) and getattr(function.value, "id", "") == "env"
            )
            os_call = isinstance(function, ast.Attribute) and (
                (_is_os_environ(function.value) and function.attr in ("get", "setdefault"))
                or (getattr(function.value, "id", "") == "os" and function.attr == "getenv")
            )
            if (environ_call or os_call) and (name := _string_argument(node)):
                names.add(name)
        elif (
            isinstance(node, ast.Subscript)
            and _is_os_environ(node.value)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            names.add(node.slice.value)
    return names


def test_the_scanner_finds_each_way_of_reading_the_environment():
    source = """
import os
a = env("A", default=1)
b = env.bool("B")
c = os.environ.get("C", "x")
d = os.environ["D"]
e = os.getenv("E")
os.environ.setdefault("F", "1")
g = other("G")
"""
    assert variables_read(source) == {"A", "B", "C", "D", "E", "F"}


@pytest.fixture(scope="module")
def settings_variables() -> dict[str, str]:
    """Variable name -> the file that reads it."""
    found = {}
    for path in SETTINGS_SOURCES:
        assert path.is_file(), f"{path.relative_to(REPO_ROOT)} is part of the settings contract"
        for name in variables_read(path.read_text()):
            found.setdefault(name, str(path.relative_to(REPO_ROOT)))
    return found


# --- What the docs promise --------------------------------------------------------------------


def documented_settings() -> dict[str, str]:
    """Variable -> documented default, from the markdown settings tables (first column
    names the variables in backticks, second column is the default)."""
    documented = {}
    for path in SETTINGS_DOCS:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not line.lstrip().startswith("|") or len(cells) < 2:
                continue
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                documented.setdefault(name, cells[1])
    return documented


def has_documented_default(default: str) -> bool:
    """'none (required ...)' or '...; production: required' means the value must be set."""
    text = default.lower()
    return bool(text) and not text.startswith("none") and "required" not in text


def secret_keys_from_contract() -> set[str]:
    """The keys docs/contract.md promises for the Secret `todo-secrets`."""
    contract = (REPO_ROOT / "docs" / "contract.md").read_text()
    match = re.search(r"Secret `todo-secrets` with keys\s+(.+?)\.", contract, re.S)
    assert match, "docs/contract.md names the keys of the Secret todo-secrets"
    return set(re.findall(r"`([A-Z_]+)`", match[1]))


def provided_variables(docs: list[dict], container: dict) -> set[str]:
    """Names a container gets from env and envFrom (ConfigMap, Secret or ExternalSecret)."""
    names = {variable["name"] for variable in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= one(
                docs, "ConfigMap", k8s.generated_base_name_of(source["configMapRef"]["name"])
            )["data"].keys()
        elif "secretRef" in source:
            names |= secret_keys(docs, k8s.generated_base_name_of(source["secretRef"]["name"]))
    return names


def secret_keys(docs: list[dict], name: str) -> set[str]:
    if secrets := find(docs, "Secret", name):
        return set(secrets[0].get("data", {})) | set(secrets[0].get("stringData", {}))
    if external := find(docs, "ExternalSecret", name):
        spec = external[0]["spec"]
        keys = {item["secretKey"] for item in spec.get("data", [])}
        keys |= set(spec.get("target", {}).get("template", {}).get("data", {}))
        return keys
    # Neither rendered: the platform writes it (terraform/do), with the contract's keys.
    return secret_keys_from_contract()


def test_every_variable_the_settings_read_is_documented(settings_variables):
    documented = documented_settings()
    undocumented = {
        name: path for name, path in settings_variables.items() if name not in documented
    }
    assert undocumented == {}, "add these to the settings table (docs/settings.md)"


@pytest.fixture(scope="module")
def required_variables(settings_variables) -> set[str]:
    """What the settings read with no documented default."""
    documented = documented_settings()
    required = {
        name
        for name in settings_variables
        if name in documented and not has_documented_default(documented[name])
    }
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= required
    return required


@overlays
def test_every_required_variable_is_provided_to_every_process(
    manifests, overlay, required_variables
):
    docs = manifests[overlay]
    specs = pod_specs(docs)
    # A preview's demo data Job (test_preview.py) runs the app's settings too.
    workloads = [*APP_WORKLOADS, "Job/seed"] if overlay == k8s.PREVIEW_OVERLAY else APP_WORKLOADS
    for workload in workloads:
        (container,) = specs[workload]["containers"]
        missing = required_variables - provided_variables(docs, container)
        assert missing == set(), f"{overlay} {workload} lacks {sorted(missing)}"


def opentelemetry_sdk_variables() -> set[str]:
    """The OTEL_* variables the OpenTelemetry API and SDK read (tracing.py hands them over)."""
    from opentelemetry import environment_variables as api
    from opentelemetry.sdk import environment_variables as sdk

    return {
        value
        for module in (api, sdk)
        for name, value in vars(module).items()
        if name.startswith("OTEL_") and isinstance(value, str)
    }


@overlays
def test_every_provided_variable_is_one_the_app_reads(manifests, overlay, settings_variables):
    """No dead or misspelled configuration: each key we set is read by the settings, or
    is a documented OTEL_* variable of the OpenTelemetry SDK."""
    docs = manifests[overlay]
    image_level = {"DJANGO_SETTINGS_MODULE"}  # read by manage.py / wsgi / celery, set by the image
    documented = documented_settings()
    sdk_read = {name for name in opentelemetry_sdk_variables() if name in documented}
    for workload in APP_WORKLOADS:
        (container,) = pod_specs(docs)[workload]["containers"]
        unknown = provided_variables(docs, container) - settings_variables.keys() - image_level
        unknown -= sdk_read
        assert unknown == set(), f"{overlay} {workload}: nothing reads {sorted(unknown)}"


def test_documented_opentelemetry_variables_are_ones_the_sdk_reads(settings_variables):
    """A misspelt OTEL_* row in the settings table (or an SDK that renamed one) fails."""
    documented = {name for name in documented_settings() if name.startswith("OTEL_")}
    known = opentelemetry_sdk_variables() | settings_variables.keys()
    assert documented - known == set()
    assert "OTEL_RESOURCE_ATTRIBUTES" in documented & opentelemetry_sdk_variables()


@overlays
def test_traces_go_to_a_collector_in_every_overlay(manifests, overlay):
    """Local: the tracing component's collector; clouds: the cluster's, with the
    environment on every span."""
    config = one(manifests[overlay], "ConfigMap", "todo-config")["data"]
    endpoint = urlsplit(config["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.scheme, endpoint.port) == ("http", 4318)
    if overlay == k8s.LOCAL_OVERLAY:
        assert endpoint.hostname == "otel-collector"
        one(manifests[overlay], "Service", "otel-collector")
    else:
        assert endpoint.hostname.endswith(".observability.svc.cluster.local")
        environment = overlay.split("/")[-1]  # stage, prod, preview
        assert config["OTEL_RESOURCE_ATTRIBUTES"] == f"deployment.environment.name={environment}"


# --- Commands, probes, bind --------------------------------------------------------------------


@overlays
def test_commands_and_probe_commands_exist_in_the_app(manifests, overlay):
    for workload in APP_WORKLOADS:
        (container,) = pod_specs(manifests[overlay])[workload]["containers"]
        commands = [container["command"]]
        commands += [
            container[probe]["exec"]["command"]
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
            if "exec" in container.get(probe, {})
        ]
        for command in commands:
            image_path = Path(command[0])
            assert image_path.parent == Path("/app/bin"), shlex.join(command)
            script = APP_DIR / "bin" / image_path.name
            assert script.is_file() and script.stat().st_mode & 0o111, f"{script} is executable"


@overlays
def test_gunicorn_binds_the_container_port_and_drains_within_the_grace_period(
    manifests, overlay, monkeypatch
):
    docs = manifests[overlay]
    (container,) = pod_specs(docs)["Deployment/web"]["containers"]
    config = one(docs, "ConfigMap", "todo-config")["data"]
    for name in ("PORT", "GUNICORN_BIND", "GUNICORN_GRACEFUL_TIMEOUT", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    environment = {**config, **{v["name"]: v["value"] for v in container["env"]}}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    gunicorn = runpy.run_path(str(APP_DIR / "config" / "gunicorn.py"))
    host, _, port = gunicorn["bind"].rpartition(":")
    assert host == "0.0.0.0"  # noqa: S104 - the pod's own network namespace
    http = next(p for p in container["ports"] if p["name"] == "http")
    assert int(port) == http["containerPort"]
    grace = pod_specs(docs)["Deployment/web"]["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 3, "the endpoint removal must reach the ingress before SIGTERM"
    assert grace > gunicorn["graceful_timeout"] + pre_stop
    # Sized to the pod, not to the node's CPUs.
    assert gunicorn["workers"] == int(environment["WEB_CONCURRENCY"])


def test_local_credentials_match_the_in_cluster_services(manifests):
    import base64

    docs = manifests[k8s.LOCAL_OVERLAY]

    def decoded(name):
        return {
            k: base64.b64decode(v).decode() for k, v in one(docs, "Secret", name)["data"].items()
        }

    app, database = decoded("todo-secrets"), decoded("postgres")
    url = urlsplit(app["DATABASE_URL"])
    assert (url.username, url.password) == (
        database["POSTGRES_USER"],
        database["POSTGRES_PASSWORD"],
    )
    assert url.path == f"/{database['POSTGRES_DB']}"
    assert (url.hostname, url.port) == ("postgres", 5432)
    one(docs, "Service", "postgres")
    broker = urlsplit(app["REDIS_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    one(docs, "Service", "redis")
