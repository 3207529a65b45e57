"""checkov's kubernetes checks over every rendered overlay: nothing fails outside the
commented skip list (kustomize/checkov-skips.yaml), and no skip is stale (`invoke k8s.validate`
runs this file unless --no-checkov)."""

from __future__ import annotations

import pytest
import yaml

from ops import k8s

from .checks import CHECKOV_SKIPS_FILE, checkov_problems

SKIPS = yaml.safe_load(CHECKOV_SKIPS_FILE.read_text())


@pytest.fixture(scope="module")
def checkov(rendered):
    return checkov_problems({overlay: rendered[overlay] for overlay in k8s.OVERLAYS})


def test_nothing_fails_outside_the_skip_list_and_no_skip_is_stale(checkov):
    problems, skipped = checkov
    assert not problems, "\n".join(problems)
    print(f"\ncheckov: {skipped} failures on the skip list")


def test_a_skip_that_matches_no_failure_is_reported_stale():
    clean = {"do/prod": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: todo}\n"}
    problems, skipped = checkov_problems(clean)
    assert skipped == 0 and problems
    assert all(p.startswith("stale skip ") and " do/prod " in p for p in problems)


def test_every_skip_gives_a_reason_and_development_exceptions_stay_local():
    assert SKIPS
    for entry in SKIPS:
        assert len(entry["reason"].strip()) > 40, f"{entry['check']}: say why it does not apply"
        if entry["check"] in ("CKV_K8S_22", "CKV_K8S_40", "CKV_K8S_14", "CKV_K8S_15"):
            assert entry["overlays"] in ([k8s.LOCAL_OVERLAY], [k8s.PREVIEW_OVERLAY]), (
                "read-only root, high uid in clouds"
            )
            if entry["overlays"] == [k8s.PREVIEW_OVERLAY]:  # only its local data services
                assert {r.split(".")[0] for r in entry["resources"]} == {"StatefulSet"}
