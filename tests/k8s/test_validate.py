"""Every overlay renders, and every object is valid for Kubernetes 1.31 to 1.34 (strict) and
its pinned CRD: `invoke k8s.validate` runs this file (and test_checkov.py) with pytest."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from invoke import Context, MockContext, Result
from invoke.exceptions import Exit

from ops import k8s
from ops.tools import VERSIONS

from .checks import crd_schemas, schema_problems
from .conftest import one


@pytest.mark.parametrize("target", k8s.OVERLAYS + k8s.ARGOCD_TARGETS)
def test_target_renders_with_objects(manifests, target):
    docs = manifests[target]
    assert docs, f"{target} rendered no objects"
    ids = [k8s.object_id(doc) for doc in docs]
    assert len(ids) == len(set(ids)), f"{target} renders an object twice: {ids}"


def test_a_target_kustomize_cannot_build_stops_the_task_with_kustomize_s_message():
    with pytest.raises(Exit, match=r"^error: kustomize failed for no/such:\n.+"):
        k8s.render("no/such")


@pytest.mark.parametrize("target", k8s.OVERLAYS + k8s.ARGOCD_TARGETS)
def test_every_object_matches_the_strict_schema_of_each_kubernetes_version(manifests, target):
    problems = schema_problems(manifests[target])
    assert not problems, "\n".join(problems)


def test_validation_rejects_an_unknown_field(manifests):
    deployment = copy.deepcopy(one(manifests["do/prod"], "Deployment", "web"))
    deployment["spec"]["replcas"] = 3
    problems = schema_problems([deployment], versions=["1.34"])
    assert len(problems) == 1 and "replcas" in problems[0]


def test_validation_rejects_a_removed_api_and_a_kind_no_pinned_crd_defines():
    removed = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"maxUnavailable": 1},
    }
    unpinned = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    problems = schema_problems([removed, unpinned], versions=["1.31"])
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
            "argocd/do/stage",
            "ApplicationSet",
            ("spec", "generators", 0, "pullRequest", "labelz"),
            ["preview"],
            "'labelz' was unexpected",
        ),
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
    (problem,) = schema_problems([doc], versions=["1.34"])
    release = next(p for p in k8s.pinned_crd_files() if kind.lower() in p.name).parts[0]
    where = ".".join(map(str, path[:-1] if "unexpected" in expected else path))  # extra: parent
    assert f"({release} CRD) at {where}: " in problem
    assert expected in problem


def test_every_pinned_crd_is_read_from_the_schema_folder_and_a_missing_one_says_how_to_get_it(
    tmp_path, monkeypatch
):
    assert {release for release, _ in crd_schemas().values()} == {
        f"{project}-{crd['version']}" for project, crd in VERSIONS["crds"].items()
    }
    monkeypatch.setenv("CRD_SCHEMAS_DIR", str(tmp_path))
    crd_schemas.cache_clear()
    missing = r"is missing\. Fix: uv run invoke k8s\.crds"
    try:
        with pytest.raises(pytest.fail.Exception, match=missing):
            crd_schemas()
    finally:
        monkeypatch.undo()
        crd_schemas.cache_clear()


def test_crds_offline_names_the_url_and_the_fix(tmp_path, monkeypatch):
    """`invoke crds` (and so `invoke setup`) on a machine that cannot reach the pinned URLs."""
    monkeypatch.setenv("CRD_SCHEMAS_DIR", str(tmp_path))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(Exit) as stopped:
        k8s.crds(Context())
    (url, _) = next(iter(k8s.pinned_crd_files().values()))
    assert str(stopped.value).startswith(f"error: could not fetch {url} (")
    assert "Fix: go online, or set CRD_SCHEMAS_DIR to a folder of the pinned CRDs" in str(
        stopped.value
    )


@pytest.mark.parametrize("no_checkov", [False, True])
def test_the_task_runs_these_checks_with_pytest_and_fails_when_they_fail(capsys, no_checkov):
    """`invoke k8s.validate`: this file and test_checkov.py (with --no-checkov, this one)."""
    context = MockContext(run=Result(exited=1))
    with pytest.raises(Exit, match=r"k8s\.validate: failed"):
        k8s.validate(context, no_checkov=no_checkov)
    command = context.run.call_args.args[0]
    assert " -m pytest " in command and str(Path(__file__)) in command
    assert ("test_checkov.py" in command) is not no_checkov
    k8s.validate(MockContext(run=Result(exited=0)), no_checkov=no_checkov)
    assert capsys.readouterr().out == "k8s.validate: all overlays valid\n"
