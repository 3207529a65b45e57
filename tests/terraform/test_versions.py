"""What the clouds run is what the tests check against: Argo CD from the manifest versions.yaml
pins (the release whose CRDs validate the Applications), and every other controller with CRDs
from a chart whose default version is the one versions.yaml records for that release."""

from __future__ import annotations

import re

import pytest

from ops import tf
from ops.tools import VERSIONS
from tests.terraform.conftest import named

CHART_VERSIONS = named("modules/cluster-tooling", "variable")["chart_versions"]


def chart_defaults() -> dict[str, str]:
    """chart_versions' `optional(string, "X")` defaults, by key."""
    return dict(re.findall(r'(\w+) = optional\(string, "([^"]+)"\)', CHART_VERSIONS["type"]))


@pytest.mark.parametrize("project", [p for p in VERSIONS["crds"] if p != "argo-cd"])
def test_each_chart_terraform_installs_ships_the_release_whose_crds_the_tests_use(project):
    chart = VERSIONS["crds"][project]["chart"]
    assert chart_defaults()[chart["variable"]] == chart["version"], (
        f"terraform/modules/cluster-tooling installs {chart['variable']} "
        f"{chart_defaults()[chart['variable']]}; versions.yaml pins {project} "
        f"{VERSIONS['crds'][project]['version']}, shipped by chart {chart['version']}"
    )


def test_argo_cd_is_the_pinned_manifest_everywhere():
    """tf.plan passes the tooling stack the manifest of this release (test_tasks.py)."""
    release = VERSIONS["crds"]["argo-cd"]["version"]
    assert {VERSIONS["manifests"][m]["version"] for m in ("argo-cd", "argo-cd-ha")} == {release}
    assert "argo_cd" not in chart_defaults(), "no Helm chart with a release of its own"
    for cloud in tf.CLOUDS:
        call = named(f"{cloud}/stacks/tooling", "module")["tooling"]
        assert call["argocd_install_yaml"] == "${var.argocd_install_yaml}"
