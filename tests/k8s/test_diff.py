"""Each cloud overlay differs from the local one only in the allowed categories below
(`invoke k8s.diff` prints the whole unified diff of the renders)."""

from __future__ import annotations

import copy
import difflib
from fnmatch import fnmatchcase

import pytest
import yaml
from invoke import Context
from invoke.exceptions import Exit

from ops import k8s

from .conftest import one

CONTAINERS = ("spec", "template", "spec", "containers", "*")
TRACING = ("otel-collector", "jaeger")  # kustomize/components/tracing
# What may differ, by category: (Kind/name pattern, field path). An empty path allows the
# whole object, present on one side only; "*" in a path stands for each item of a list.
ALLOWED: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "replicas": [
        ("Deployment/*", ("spec", "replicas")),
        ("HorizontalPodAutoscaler/*", ()),
        ("PodDisruptionBudget/*", ()),
    ],
    "resources": [("*", (*CONTAINERS, "resources"))],
    "image": [
        ("*", (*CONTAINERS, "image")),
        ("*", (*CONTAINERS, "imagePullPolicy")),
        # DigitalOcean: the registry integration's pull secret (AWS nodes pull by IAM).
        ("ServiceAccount/todo", ("imagePullSecrets",)),
    ],
    "hosts/TLS": [
        ("Ingress/web", ("spec", "rules")),
        ("Ingress/web", ("spec", "tls")),
        ("Ingress/web", ("spec", "ingressClassName")),
        ("Ingress/web", ("metadata", "annotations", "cert-manager.io/cluster-issuer")),
        ("ConfigMap/todo-config", ("data", "DJANGO_ALLOWED_HOSTS")),
        ("ConfigMap/todo-config", ("data", "DJANGO_CSRF_TRUSTED_ORIGINS")),
        ("ConfigMap/todo-config", ("data", "DJANGO_SITE_URL")),
        # Who may reach web: the cloud ingress controller's namespace, or the local one's.
        ("NetworkPolicy/web-ingress", ("spec", "ingress")),
        # cert-manager's HTTP-01 solver pods, where a certificate is issued.
        ("NetworkPolicy/acme-http01-solver", ()),
    ],
    "where data runs": [
        *[
            (f"{kind}/{name}", ())
            for kind in ("StatefulSet", "Service")
            for name in ("postgres", "redis")
        ],
        ("Secret/postgres", ()),
        ("NetworkPolicy/postgres-ingress", ()),
        ("NetworkPolicy/redis-ingress", ()),
        ("NetworkPolicy/app-egress-data", ("spec", "egress")),
        ("NetworkPolicy/celery-exporter-egress-broker", ("spec", "egress")),
    ],
    # Locally the tracing component's collector and Jaeger; in the clouds the cluster's.
    "where traces go": [
        ("ConfigMap/todo-config", ("data", "OTEL_EXPORTER_OTLP_ENDPOINT")),
        ("ConfigMap/todo-config", ("data", "OTEL_RESOURCE_ATTRIBUTES")),
        ("NetworkPolicy/app-egress-otlp", ("spec", "egress")),
        *[(f"{kind}/{name}", ()) for kind in ("Deployment", "Service") for name in TRACING],
        ("ConfigMap/otel-collector", ()),
        ("NetworkPolicy/otel-collector", ()),
        ("NetworkPolicy/jaeger-ingress", ()),
    ],
    "where todo-secrets comes from": [
        ("Secret/todo-secrets", ()),
        ("ExternalSecret/todo-secrets", ()),
    ],
    "development mode": [
        ("*", (*CONTAINERS, "args")),
        ("*", (*CONTAINERS, "securityContext", "readOnlyRootFilesystem")),
        ("*", (*CONTAINERS, "livenessProbe", "failureThreshold")),
        *[
            ("ConfigMap/todo-config", ("data", f"DJANGO_{name}"))
            for name in ("SETTINGS_MODULE", "DEBUG", "LOG_FORMAT", "SECURE_SSL_REDIRECT")
        ],
    ],
    # Tilt needs the namespace object; in the clouds Argo CD creates it (CreateNamespace).
    "namespace": [("Namespace/todo", ())],
}


def drop(value, path: tuple[str, ...]) -> None:
    """Delete the field at `path` from `value`, in place."""
    head, *rest = path
    if head == "*":
        for item in value if isinstance(value, list) else []:
            drop(item, tuple(rest))
    elif isinstance(value, dict) and head in value:
        if rest:
            drop(value[head], tuple(rest))
        if not rest or value[head] == {}:  # nor an empty mapping left behind
            del value[head]


def without_allowed(docs: list[dict], categories) -> dict[str, dict]:
    """The normalised render with every difference of these categories taken out."""
    allowed = [allowance for category in categories for allowance in ALLOWED[category]]
    kept = {}
    for key, doc in copy.deepcopy(k8s.normalised(docs)).items():
        matching = [path for pattern, path in allowed if fnmatchcase(key, pattern)]
        if () not in matching:
            for path in matching:
                drop(doc, path)
            kept[key] = doc
    return kept


def not_allowed(local: list[dict], cloud: list[dict], categories=ALLOWED) -> list[str]:
    """The changed lines (unified diff) left once the allowed differences are taken out."""
    before, after = (
        yaml.safe_dump(without_allowed(docs, categories)).splitlines() for docs in (local, cloud)
    )
    differences = difflib.unified_diff(before, after, "local", "cloud", lineterm="")
    return [line for line in differences if line[:1] in "+-" and line[:3] not in ("+++", "---")]


@pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
def test_cloud_overlay_differs_from_local_only_in_allowed_categories(manifests, overlay):
    assert not_allowed(manifests[k8s.LOCAL_OVERLAY], manifests[overlay]) == []


@pytest.mark.parametrize("category", ALLOWED)
def test_every_allowed_category_explains_a_real_difference(manifests, category):
    others = [other for other in ALLOWED if other != category]
    local = manifests[k8s.LOCAL_OVERLAY]
    assert any(not_allowed(local, manifests[overlay], others) for overlay in k8s.CLOUD_OVERLAYS)


def test_a_change_outside_the_allowed_categories_is_reported(manifests):
    cloud = copy.deepcopy(manifests["do/prod"])
    beat = one(cloud, "Deployment", "beat")
    beat["spec"]["template"]["spec"]["containers"][0]["command"] = ["/app/bin/worker"]
    beat["spec"]["strategy"] = {"type": "RollingUpdate"}
    found = not_allowed(manifests[k8s.LOCAL_OVERLAY], cloud)
    assert "+          - /app/bin/worker" in found and "+      type: RollingUpdate" in found


# --- What a branch changes: `invoke k8s.diff --base REV` (posted on every pull request) ------


def test_a_new_overlay_is_all_added_and_an_unknown_revision_stops_the_task():
    assert k8s.render_at("HEAD", "no/such-overlay") == []
    with pytest.raises(Exit, match="git rev-parse"):
        k8s.render_at("no-such-revision", "do/prod")


def test_the_pull_request_summary_has_a_row_per_cloud_overlay(capsys):
    k8s.diff(Context(), base="HEAD", markdown=True)
    out = capsys.readouterr().out
    assert out.startswith("### Rendered manifests: this branch against `HEAD`")
    for overlay in k8s.CLOUD_OVERLAYS:
        assert f"\n| {overlay} | - | - | - |" in out  # HEAD against itself: no change
    assert "<details>" not in out


def test_the_diff_against_local_names_added_removed_and_changed_objects(capsys):
    k8s.diff(Context(), cloud="aws/prod")
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("=== "))
    assert header.startswith("=== local -> aws/prod: ") and " added, " in header
    assert "\n+ExternalSecret/todo-secrets:" in out and "\n-StatefulSet/postgres:" in out
