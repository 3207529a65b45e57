"""checkov's kubernetes checks over every rendered overlay: nothing fails outside the
commented skip list (kustomize/checkov-skips.yaml), and no skip is stale."""

from __future__ import annotations

import pytest

from ops import k8s


@pytest.fixture(scope="session")
def checkov_failures(rendered):
    # Every overlay must render for the scan (and the stale-skip check) to be complete.
    overlays = {overlay: rendered[overlay] for overlay in k8s.OVERLAYS}
    return k8s.run_checkov(overlays)


def test_no_checkov_failure_outside_the_skip_list(checkov_failures):
    unexpected, skipped, _ = k8s.split_checkov_failures(
        checkov_failures, k8s.checkov_skips(), k8s.OVERLAYS
    )
    assert [f"{f.check} {f.overlay} {f.resource}: {f.title}" for f in unexpected] == []
    # The closing figures: what checkov found and what the skip list absorbed.
    print(f"\ncheckov: {len(checkov_failures)} failures, {len(skipped)} on the skip list")


def test_every_skip_still_matches_a_failure(checkov_failures):
    _, _, stale = k8s.split_checkov_failures(checkov_failures, k8s.checkov_skips(), k8s.OVERLAYS)
    assert stale == [], "remove these entries from kustomize/checkov-skips.yaml"


def test_cloud_overlays_keep_the_read_only_root_and_a_high_uid():
    """The development exceptions never reach a cloud overlay."""
    for (check, overlay, _), _reason in k8s.checkov_skips().items():
        if check in ("CKV_K8S_22", "CKV_K8S_40", "CKV_K8S_14", "CKV_K8S_15"):
            assert overlay == k8s.LOCAL_OVERLAY


def test_every_skip_gives_a_reason():
    skips = k8s.checkov_skips()
    assert skips
    for key, reason in skips.items():
        assert len(reason) > 40, f"{key}: say why the check does not apply"


def test_split_reports_unexpected_failures_and_stale_skips():
    failing = k8s.CheckovFailure("CKV_K8S_8", "do/prod", "Deployment.todo.web")
    skipped = k8s.CheckovFailure("CKV_K8S_35", "do/prod", "Deployment.todo.web")
    skips = {
        skipped.key: "reason",
        ("CKV_K8S_43", "do/prod", "Deployment.todo.web"): "no longer fails",
        ("CKV_K8S_43", "aws/prod", "Deployment.todo.web"): "overlay not scanned",
    }
    unexpected, matched, stale = k8s.split_checkov_failures([failing, skipped], skips, ["do/prod"])
    assert unexpected == [failing]
    assert matched == [skipped]
    assert stale == [("CKV_K8S_43", "do/prod", "Deployment.todo.web")]
