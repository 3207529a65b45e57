"""The checks `invoke k8s.validate` runs over rendered manifests through pytest (test_validate.py,
test_checkov.py), and other tests reuse: every object against the strict schema of each
Kubernetes version (kubernetes-validate) or its pinned CRD (jsonschema), and checkov's
kubernetes checks with kustomize/checkov-skips.yaml."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest
import yaml

from ops import k8s
from ops.tools import run_checkov

KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34")  # strict schemas every object meets
CHECKOV_SKIPS_FILE = k8s.KUSTOMIZE_DIR / "checkov-skips.yaml"


def strict(schema: dict) -> dict:
    """A CRD's OpenAPI schema as JSON Schema refusing the unknown fields the API server prunes
    (unless x-kubernetes-preserve-unknown-fields); CEL rules stay unchecked."""
    schema = dict(schema)
    if "properties" in schema:
        schema["properties"] = {name: strict(value) for name, value in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict(schema[key])
    if schema.pop("nullable", False) and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], tuple[str, dict]]:
    """(apiVersion, kind) -> (release, strict schema) of each served version of the pinned CRDs."""
    schemas = {}
    for path in k8s.pinned_crd_files():
        if not (file := k8s.crd_schemas_dir() / path).is_file():
            pytest.fail(
                f"{file} is missing. Fix: uv run invoke k8s.crds (downloads the pinned CRDs "
                "there), or set CRD_SCHEMAS_DIR to a folder that holds them",
                pytrace=False,
            )
        for crd in yaml.safe_load_all(file.read_text()):
            spec = crd["spec"]
            for version in (v for v in spec["versions"] if v.get("served") and "schema" in v):
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = (path.parts[0], strict(version["schema"]["openAPIV3Schema"]))
    return schemas


def schema_problems(docs: list[dict], versions=KUBERNETES_VERSIONS) -> list[str]:
    """Custom resources against their pinned CRD, other objects against each version's strict
    schema: unknown fields fail, and so does a kind with no schema."""
    import kubernetes_validate  # slow to import
    from jsonschema import Draft4Validator  # OpenAPI v3 schemas are close to draft 4

    problems = []
    for doc in docs:
        name, key = k8s.object_id(doc), (doc.get("apiVersion"), doc.get("kind"))
        if key in crd_schemas():
            release, schema = crd_schemas()[key]
            errors = [(f"{release} CRD", e) for e in Draft4Validator(schema).iter_errors(doc)]
        else:
            errors = []
            for version in versions:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    errors.append((f"Kubernetes {version}", e))
                except kubernetes_validate.SchemaNotFoundError as e:
                    problems.append(f"{name}: {e.message}, nor in a CRD versions.yaml pins")
                    break
        for where, e in errors:
            path = ".".join(map(str, e.absolute_path)) or "(object)"
            problems.append(f"{name} ({where}) at {path}: {e.message}")
    return problems


def checkov_problems(rendered: dict[str, str]) -> tuple[list[str], int]:
    """checkov over rendered overlays: (failures off the skip list and stale skips, how many
    failures the skip list absorbed)."""
    skips = {
        (entry["check"], overlay, resource)
        for entry in yaml.safe_load(CHECKOV_SKIPS_FILE.read_text())
        for overlay in entry["overlays"]
        for resource in entry["resources"]
    }
    with tempfile.TemporaryDirectory(prefix="k8s-checkov-") as tmp:
        for overlay, text in rendered.items():  # checkov names each file by its path: /do/prod/...
            (file := Path(tmp, overlay, "rendered.yaml")).parent.mkdir(parents=True)
            file.write_text(text)
        reports = run_checkov("kubernetes", "--directory", tmp)
    failed = {
        (check["check_id"], Path(check["file_path"]).parent.as_posix()[1:], check["resource"]): (
            check["check_name"]
        )
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    }
    problems = [
        f"{' '.join(key)}: {name}" for key, name in sorted(failed.items()) if key not in skips
    ]
    problems += [
        f"stale skip {' '.join(key)}: it no longer fails; remove it from {CHECKOV_SKIPS_FILE.name}"
        for key in sorted(skips - failed.keys())
        if key[1] in rendered
    ]
    return problems, len(failed.keys() & skips)
