"""The local overlay differs from each cloud overlay only in the allow-listed fields
(`invoke k8s.diff` prints the same comparison)."""

from __future__ import annotations

import copy

import pytest

from ops import k8s

from .conftest import one


@pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
def test_cloud_overlay_differs_from_local_only_in_allowed_fields(manifests, overlay):
    found = k8s.differences(manifests[k8s.LOCAL_OVERLAY], manifests[overlay])
    assert found, "a cloud overlay identical to the local one is not plausible"
    not_allowed = [f"{d.subject}: {d.local!r} -> {d.cloud!r}" for d in found if d.category is None]
    assert not_allowed == []


def test_every_allowed_category_is_used(manifests):
    """No allowance is dead: each category explains at least one real difference."""
    used = {
        difference.category
        for overlay in k8s.CLOUD_OVERLAYS
        for difference in k8s.differences(manifests[k8s.LOCAL_OVERLAY], manifests[overlay])
    }
    assert used == set(k8s.ALLOWED_DIFFERENCES)


def test_a_change_outside_the_allow_list_is_reported(manifests):
    local = manifests[k8s.LOCAL_OVERLAY]
    cloud = copy.deepcopy(manifests["do/prod"])
    beat = one(cloud, "Deployment", "beat")
    beat["spec"]["template"]["spec"]["containers"][0]["command"] = ["/app/bin/worker"]
    beat["spec"]["strategy"] = {"type": "RollingUpdate"}
    not_allowed = {d.subject for d in k8s.differences(local, cloud) if d.category is None}
    assert not_allowed == {
        "Deployment/beat:spec.template.spec.containers[beat].command",
        "Deployment/beat:spec.strategy.type",
    }


def test_generated_name_hashes_are_not_differences(manifests):
    found = k8s.differences(manifests[k8s.LOCAL_OVERLAY], manifests["do/stage"])
    assert not [d for d in found if "todo-config-" in d.subject or "todo-config-" in str(d.local)]
    config = [d for d in found if d.object == "ConfigMap/todo-config"]
    assert config and all(d.field.startswith("data.") for d in config)
