"""Every overlay renders, and every object is valid for Kubernetes 1.31 to 1.34 (strict)."""

from __future__ import annotations

import copy

import pytest

from ops import k8s

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


@pytest.mark.parametrize("target", k8s.OVERLAYS + k8s.ARGOCD_TARGETS)
def test_custom_resources_are_only_the_allow_listed_ones(manifests, target):
    builtin_groups = ("v1", "apps/", "batch/", "networking.k8s.io/", "autoscaling/", "policy/")
    custom = {
        (doc["apiVersion"], doc["kind"])
        for doc in manifests[target]
        if not doc["apiVersion"].startswith(builtin_groups)
    }
    assert custom <= k8s.CUSTOM_RESOURCES.keys()


def test_validation_rejects_an_unknown_field(manifests):
    deployment = copy.deepcopy(one(manifests["do/prod"], "Deployment", "web"))
    deployment["spec"]["replcas"] = 3
    problems = k8s.schema_problems([deployment], versions=["1.34"])
    assert len(problems) == 1 and "replcas" in problems[0]


def test_validation_rejects_a_removed_api_and_an_unlisted_kind():
    removed = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"maxUnavailable": 1},
    }
    unlisted = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    problems = k8s.schema_problems([removed, unlisted], versions=["1.31"])
    assert [p.split(":")[0] for p in problems] == ["PodDisruptionBudget/web", "Widget/w"]


def test_allow_listed_custom_resources_are_checked_against_their_pinned_crd():
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "todo"},
        "spec": {
            "project": "todo",
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "todo"},
            "source": {"repoURL": "https://github.com/o/r.git", "path": "kustomize"},
        },
    }
    assert k8s.schema_problems([application]) == []
    misspelt = {**application, "spec": {**application["spec"], "syncPolicyy": {}}}
    (problem,) = k8s.schema_problems([misspelt])
    assert problem.startswith("Application/todo (CRD) at spec:") and "syncPolicyy" in problem
    (problem,) = k8s.schema_problems([{**application, "spec": None}])
    assert "Application/todo (CRD) at spec" in problem
