"""The Kubernetes side of observability: scrape ports and annotations that match the app,
metrics the Ingress cannot reach, scraping only from the monitoring namespace, and the
optional components (ServiceMonitors, alert rules, dashboard, KEDA) held to the same
gates as the overlays: strict schemas, checkov, and queries that parse and name only
metrics the app exports."""

from __future__ import annotations

import json
import re
import runpy

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

from observability import celery_exporter, metrics_server
from ops import k8s
from ops.tools import APP_DIR
from tests.k8s.checks import checkov_problems, schema_problems
from tests.k8s.conftest import find, one, pod_specs

from .conftest import COMPONENTS_DIR, OPTIONAL_COMPONENTS

overlays = pytest.mark.parametrize("overlay", k8s.OVERLAYS)
cloud_overlays = pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
METRICS_WORKLOADS = ("web", "celery-exporter")


def container(docs: list[dict], name: str) -> dict:
    (only,) = pod_specs(docs)[f"Deployment/{name}"]["containers"]
    return only


def metrics_port(docs: list[dict], name: str) -> int:
    (port,) = [p for p in container(docs, name)["ports"] if p["name"] == "metrics"]
    return port["containerPort"]


def selects(selector: dict, labels: dict) -> bool:
    if not all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items()):
        return False
    return all(
        labels.get(expression["key"]) in expression["values"]
        for expression in selector.get("matchExpressions", [])
    )


def pod_labels(docs: list[dict], name: str) -> dict:
    return one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]


# --- The base, in every overlay ----------------------------------------------------------------


@overlays
def test_web_metrics_port_is_the_one_gunicorn_serves_and_prometheus_is_told(
    manifests, overlay, monkeypatch
):
    docs = manifests[overlay]
    web = container(docs, "web")
    monkeypatch.delenv("METRICS_PORT", raising=False)
    for variable in web.get("env", []):
        monkeypatch.setenv(variable["name"], variable["value"])
    gunicorn = runpy.run_path(str(APP_DIR / "config" / "gunicorn.py"))
    assert metrics_port(docs, "web") == gunicorn["metrics_port"] == 9100
    annotations = one(docs, "Deployment", "web")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9100",
        "prometheus.io/path": metrics_server.METRICS_PATH,
    }


@overlays
def test_the_celery_exporter_runs_once_on_its_port_with_health_probes(manifests, overlay):
    docs = manifests[overlay]
    deployment = one(docs, "Deployment", "celery-exporter")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "two would count twice"
    assert "celery-exporter" not in [
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in find(docs, "HorizontalPodAutoscaler")
    ]
    exporter = container(docs, "celery-exporter")
    assert exporter["command"] == ["/app/bin/celery-exporter"]
    assert (APP_DIR / "bin" / "celery-exporter").stat().st_mode & 0o111
    assert metrics_port(docs, "celery-exporter") == celery_exporter.DEFAULT_PORT
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(celery_exporter.DEFAULT_PORT)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert exporter[probe]["httpGet"] == {"path": metrics_server.HEALTH_PATH, "port": "metrics"}
    image = {c["image"] for c in (container(docs, "web"), exporter)}
    assert len(image) == 1, "the app's one image"


@overlays
def test_the_ingress_cannot_reach_a_metrics_port(manifests, overlay):
    docs = manifests[overlay]
    ingress = one(docs, "Ingress", "web")
    backends = {
        (path["backend"]["service"]["name"], path["backend"]["service"]["port"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {("web", "http")}
    service = one(docs, "Service", "web")
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]
    web = container(docs, "web")
    http = next(port for port in web["ports"] if port["name"] == "http")
    assert http["containerPort"] != metrics_port(docs, "web")


@overlays
def test_only_the_monitoring_namespace_may_scrape_and_only_the_metrics_ports(manifests, overlay):
    docs = manifests[overlay]
    ingress_policies = [
        policy
        for policy in find(docs, "NetworkPolicy")
        if "Ingress" in policy["spec"]["policyTypes"]
    ]
    scrape = one(docs, "NetworkPolicy", "metrics-scrape")["spec"]
    assert scrape["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
            "ports": [{"protocol": "TCP", "port": "metrics"}],
        }
    ]
    for name in METRICS_WORKLOADS:
        assert selects(scrape["podSelector"], pod_labels(docs, name)), name
        # No other policy opens the metrics port, by name or by number.
        metrics = {"metrics", metrics_port(docs, name)}
        for policy in ingress_policies:
            if policy["metadata"]["name"] == "metrics-scrape":
                continue
            if not selects(policy["spec"]["podSelector"], pod_labels(docs, name)):
                continue
            for rule in policy["spec"].get("ingress", []):
                opened = {port["port"] for port in rule.get("ports", [])}
                assert rule.get("ports") and not opened & metrics, policy["metadata"]["name"]
    # Only web and the exporter are selected: the workers and beat expose nothing.
    for name in ("worker", "beat"):
        assert not selects(scrape["podSelector"], pod_labels(docs, name))


@overlays
def test_the_exporter_reaches_only_dns_and_the_broker(manifests, overlay):
    docs = manifests[overlay]
    labels = pod_labels(docs, "celery-exporter")
    egress = [
        policy
        for policy in find(docs, "NetworkPolicy")
        if "Egress" in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], labels)
    ]
    names = sorted(policy["metadata"]["name"] for policy in egress)
    assert names == ["allow-dns", "celery-exporter-egress-broker", "default-deny"]
    broker = one(docs, "NetworkPolicy", "celery-exporter-egress-broker")["spec"]["egress"]
    ports = {port["port"] for rule in broker for port in rule["ports"]}
    # The broker's port: Valkey in-cluster and on AWS; DigitalOcean's managed Valkey.
    assert ports == ({25061} if overlay.startswith("do/") else {6379})
    if overlay == k8s.LOCAL_OVERLAY:
        redis_ingress = one(docs, "NetworkPolicy", "redis-ingress")["spec"]["ingress"]
        assert any(selects(source["podSelector"], labels) for source in redis_ingress[0]["from"])


# --- The optional components on every cloud overlay --------------------------------------------


@pytest.fixture(scope="module")
def component_docs(with_components) -> dict[str, list[dict]]:
    return {overlay: k8s.documents(text) for overlay, text in with_components.items()}


@cloud_overlays
def test_components_render_valid_objects(component_docs, overlay):
    docs = component_docs[overlay]
    kinds = {doc["kind"] for doc in docs}
    assert {"ServiceMonitor", "PrometheusRule", "ScaledObject"} <= kinds
    assert schema_problems(docs) == []


def test_components_pass_checkov_with_the_overlays_skip_list(with_components):
    problems, _ = checkov_problems(with_components)
    assert problems == []


@cloud_overlays
def test_service_monitors_scrape_the_metrics_ports_of_the_right_pods(component_docs, overlay):
    docs = component_docs[overlay]
    for monitor, workload in (("web", "web"), ("celery-exporter", "celery-exporter")):
        spec = one(docs, "ServiceMonitor", monitor)["spec"]
        (endpoint,) = spec["endpoints"]
        assert endpoint["path"] == metrics_server.METRICS_PATH
        services = [
            service
            for service in find(docs, "Service")
            if selects(spec["selector"], service["metadata"]["labels"])
            and endpoint["port"] in [port["name"] for port in service["spec"]["ports"]]
        ]
        (service,) = services
        assert service["metadata"]["name"] != "web", "never the Service the Ingress uses"
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(docs, workload))
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] == "metrics"
        assert port["port"] == metrics_port(docs, workload)


@cloud_overlays
def test_keda_replaces_the_worker_autoscaler(component_docs, overlay):
    docs = component_docs[overlay]
    scaled = one(docs, "ScaledObject", "worker")["spec"]
    assert scaled["scaleTargetRef"] == {"name": "worker"}
    assert {trigger["type"] for trigger in scaled["triggers"]} == {"prometheus", "cpu"}
    targets = [
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in find(docs, "HorizontalPodAutoscaler")
    ]
    assert targets == ["web"], "KEDA owns the worker's HPA; two would fight"


def test_the_dashboard_config_map_holds_the_dashboard_file(component_docs):
    docs = component_docs["do/prod"]
    config = one(docs, "ConfigMap", "grafana-dashboard-todo")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads((COMPONENTS_DIR / "monitoring" / "dashboard.json").read_text())
    assert json.loads(config["data"]["todo.json"]) == dashboard


def test_every_component_has_a_readme():
    for name in OPTIONAL_COMPONENTS:
        readme = COMPONENTS_DIR / name / "README.md"
        assert readme.is_file() and len(readme.read_text()) > 500, name


# --- Queries: they parse, and name only metrics the app exports ---------------------------------


def exported_metric_names() -> set[str]:
    """Sample names web and the Celery exporter can expose, from their metric objects."""
    import django_prometheus.db.metrics  # noqa: F401 - registers the database metrics

    import core.health  # noqa: F401 - registers the readiness metric
    import observability.middleware  # noqa: F401 - registers the request metrics

    registry = CollectorRegistry()
    events = celery_exporter.TaskEvents(registry)
    # A broker that cannot be read and a known tick: every scrape-time family appears.
    unreachable = type("App", (), {"amqp": type("Amqp", (), {"queues": {"celery": None}})()})()
    collector = celery_exporter.BrokerCollector(unreachable, events, lambda: 0.0)
    families = [*REGISTRY.collect(), *registry.collect(), *collector.collect()]
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + suffix for family in families for suffix in suffixes[family.type]}


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every alert rule, dashboard panel, and the KEDA trigger."""
    found = []
    rules = yaml.safe_load((COMPONENTS_DIR / "monitoring" / "prometheusrule.yaml").read_text())
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            found.append((f"alert {rule['alert']}", rule["expr"]))
    dashboard = json.loads((COMPONENTS_DIR / "monitoring" / "dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.+), \w+\)", variable["query"]["query"])
            found.append((f"variable {variable['name']}", inner[1]))
    scaled = yaml.safe_load((COMPONENTS_DIR / "keda-worker" / "scaledobject.yaml").read_text())
    for trigger in scaled["spec"]["triggers"]:
        if trigger["type"] == "prometheus":
            found.append(("KEDA trigger", trigger["metadata"]["query"]))
    return found


def metric_names(node) -> set[str]:
    """Metric names a parsed PromQL expression selects."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name}
    if isinstance(node, promql_parser.MatrixSelector):
        return metric_names(node.vector_selector)
    children = []
    for attribute in ("lhs", "rhs", "expr", "param"):
        children.append(getattr(node, attribute, None))
    children += list(getattr(node, "args", None) or [])
    return set().union(*(metric_names(child) for child in children if child is not None))


# Grafana's variables, as Grafana substitutes them before querying.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": "todo"}


def test_every_query_parses_and_names_only_exported_metrics():
    exported = exported_metric_names() | {"up"}  # `up`: Prometheus' own, per target
    found = queries()
    assert len(found) >= 20
    for where, query in found:
        for variable, replacement in GRAFANA_VARIABLES.items():
            query = query.replace(variable, replacement)
        parsed = promql_parser.parse(query)
        names = metric_names(parsed)
        assert names, f"{where}: selects no metric"
        assert names <= exported, f"{where}: unknown {sorted(names - exported)}"


def test_the_alerts_cover_what_the_issue_asks_to_watch():
    rules = yaml.safe_load((COMPONENTS_DIR / "monitoring" / "prometheusrule.yaml").read_text())
    by_name = {rule["alert"]: rule for group in rules["spec"]["groups"] for rule in group["rules"]}
    watched = {
        "django_http_responses_total_by_status_view_method_total": "errors",
        "django_http_requests_latency_seconds_by_view_method_bucket": "latency",
        "celery_queue_length": "queue depth",
        "celery_task_failed_total": "task failures",
        "celery_beat_tick_age_seconds": "beat lag",
        "celery_workers": "workers",
    }
    covered = set().union(*(metric_names(promql_parser.parse(r["expr"])) for r in by_name.values()))
    assert set(watched) <= covered
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
