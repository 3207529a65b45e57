"""Every overlay renders, and every object is valid for Kubernetes 1.31 to 1.34 (strict)."""

from __future__ import annotations

import copy

import pytest
from invoke import Context
from invoke.exceptions import Exit

from ops import k8s
from ops.tools import VERSIONS

from .conftest import one


@pytest.mark.parametrize("target", k8s.OVERLAYS + k8s.ARGOCD_TARGETS)
def test_target_renders_with_objects(manifests, target):
    docs = manifests[target]
    assert docs, f"{target} rendered no objects"
    ids = [k8s.object_id(doc) for doc in docs]
    assert len(ids) == len(set(ids)), f"{target} renders an object twice: {ids}"


@pytest.mark.parametrize("target", k8s.OVERLAYS + k8s.ARGOCD_TARGETS)
def test_every_object_matches_the_strict_schema_of_each_kubernetes_version(manifests, target):
    assert k8s.schema_problems(manifests[target]) == []


def test_validation_rejects_an_unknown_field(manifests):
    deployment = copy.deepcopy(one(manifests["do/prod"], "Deployment", "web"))
    deployment["spec"]["replcas"] = 3
    problems = k8s.schema_problems([deployment], versions=["1.34"])
    assert len(problems) == 1 and "replcas" in problems[0]


def test_validation_rejects_a_removed_api_and_a_kind_no_pinned_crd_defines():
    removed = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"maxUnavailable": 1},
    }
    unpinned = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    problems = k8s.schema_problems([removed, unpinned], versions=["1.31"])
    assert [p.split(":")[0] for p in problems] == ["PodDisruptionBudget/web", "Widget/w"]


@pytest.mark.parametrize(
    ("target", "kind", "path", "value", "expected"),
    [
        # A misspelt field, a wrong type and a value outside the CRD's enum.
        (
            "argocd/do/prod",
            "Application",
            ("spec", "syncPolicy", "automated", "selfHael"),
            True,
            "'selfHael' was unexpected",
        ),
        ("argocd/aws/stage", "AppProject", ("spec", "sourceRepos"), "https://x", "not of type"),
        (
            "aws/prod",
            "ExternalSecret",
            ("spec", "target", "creationPolicy"),
            "Sometimes",
            "is not one of",
        ),
    ],
)
def test_custom_resources_are_checked_against_their_pinned_crd(
    manifests, target, kind, path, value, expected
):
    (doc,) = [copy.deepcopy(d) for d in manifests[target] if d["kind"] == kind]
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (problem,) = k8s.schema_problems([doc], versions=["1.34"])
    release = next(p for p in k8s.pinned_crd_files() if kind.lower() in p.name).parts[0]
    where = ".".join(path[:-1] if "unexpected" in expected else path)  # an extra key: its parent
    assert f"({release} CRD) at {where}: " in problem
    assert expected in problem


def test_every_pinned_crd_is_read_from_the_schema_folder_and_a_missing_one_says_how_to_get_it(
    tmp_path, monkeypatch
):
    assert {release for release, _ in k8s.crd_schemas().values()} == {
        f"{project}-{crd['version']}" for project, crd in VERSIONS["crds"].items()
    }
    monkeypatch.setenv("CRD_SCHEMAS_DIR", str(tmp_path))
    k8s.crd_schemas.cache_clear()
    try:
        with pytest.raises(Exit, match=r"is missing\. Fix: uv run invoke k8s.crds"):
            k8s.crd_schemas()
    finally:
        monkeypatch.undo()
        k8s.crd_schemas.cache_clear()


def test_crds_offline_names_the_url_and_the_fix(tmp_path, monkeypatch):
    """`invoke crds` (and so `invoke setup`) on a machine that cannot reach the pinned URLs."""
    monkeypatch.setenv("CRD_SCHEMAS_DIR", str(tmp_path))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        with pytest.raises(Exit) as stopped:
            k8s.crds(Context())
    finally:
        monkeypatch.undo()
        k8s.crd_schemas.cache_clear()
    (url, _) = next(iter(k8s.pinned_crd_files().values()))
    assert str(stopped.value).startswith(f"error: could not fetch {url} (")
    assert "Fix: go online, or set CRD_SCHEMAS_DIR to a folder of the pinned CRDs" in str(
        stopped.value
    )
