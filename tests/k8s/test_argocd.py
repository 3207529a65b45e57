"""Argo CD: one Application per cloud environment, pointing at its overlay, allowed by
the AppProject to create exactly what that overlay renders."""

from __future__ import annotations

import pytest
import yaml

from ops import k8s

from .conftest import one

SOURCE = yaml.safe_load((k8s.KUSTOMIZE_DIR / "argocd" / "base" / "source.yaml").read_text())["data"]

environments = pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)


def _objects(manifests, overlay):
    docs = manifests[f"argocd/{overlay}"]
    return one(docs, "AppProject", "todo"), one(
        docs, "Application", f"todo-{overlay.replace('/', '-')}"
    )


@environments
def test_application_syncs_its_overlay_from_the_configured_repository(manifests, overlay):
    project, application = _objects(manifests, overlay)
    spec = application["spec"]
    assert spec["project"] == project["metadata"]["name"]
    assert spec["source"] == {
        "repoURL": SOURCE["repoURL"],
        # Stage follows its own branch: where `invoke deploy --env stage` commits.
        "targetRevision": SOURCE[
            "stageTargetRevision" if overlay.endswith("/stage") else "targetRevision"
        ],
        "path": f"kustomize/overlays/{overlay}",
    }
    assert (k8s.REPO_ROOT / spec["source"]["path"] / "kustomization.yaml").is_file()
    assert project["spec"]["sourceRepos"] == [SOURCE["repoURL"]]
    assert application["metadata"]["namespace"] == project["metadata"]["namespace"] == "argocd"


@environments
def test_sync_is_automated_self_healing_and_retried(manifests, overlay):
    _, application = _objects(manifests, overlay)
    policy = application["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=true" in policy["syncOptions"]
    assert policy["retry"]["limit"] >= 3
    assert {"duration", "factor", "maxDuration"} <= policy["retry"]["backoff"].keys()
    labels = policy["managedNamespaceMetadata"]["labels"]
    local_namespace = one(manifests[k8s.LOCAL_OVERLAY], "Namespace", "todo")
    pod_security = {
        k: v
        for k, v in local_namespace["metadata"]["labels"].items()
        if k.startswith("pod-security")
    }
    assert labels == pod_security


@environments
def test_project_admits_the_destination_and_every_rendered_kind(manifests, overlay):
    project, application = _objects(manifests, overlay)
    destination = application["spec"]["destination"]
    assert destination in project["spec"]["destinations"]
    allowed = {
        (entry["group"], entry["kind"]) for entry in project["spec"]["namespaceResourceWhitelist"]
    }
    rendered = manifests[overlay]
    assert {doc["metadata"]["namespace"] for doc in rendered} == {destination["namespace"]}
    kinds = {(doc["apiVersion"].rpartition("/")[0], doc["kind"]) for doc in rendered}
    assert kinds - allowed == set(), "add these kinds to the AppProject whitelist"
    # The kinds a component may add (the ExternalSecret on AWS, the opt-in components), all
    # admitted but the in-cluster data's StatefulSets (local and preview only).
    components = {
        (doc["apiVersion"].rpartition("/")[0], doc["kind"])
        for path in (k8s.KUSTOMIZE_DIR / "components").glob("*/*.yaml")
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc and "kind" in doc and "metadata" in doc
    }
    assert components - allowed == {("apps", "StatefulSet")}, "add these to the whitelist"
    unused = allowed - kinds - components
    assert unused == set(), "whitelisted kinds no overlay or component renders"
