"""checkov's terraform framework over terraform/: no failure outside terraform/checkov-skips.yaml,
and no entry there that no longer fails."""

from __future__ import annotations

import pytest

from ops import tf


@pytest.fixture(scope="module")
def checkov():
    return tf.run_checkov()


def test_no_failure_outside_the_skip_list(checkov):
    failures, passed = checkov
    skips = tf.checkov_skips()
    unexpected = [f for f in failures if (f.check, f.resource) not in skips]
    print(
        f"checkov terraform: {passed} passed, {len(failures)} failed, all of them on the skip list"
    )
    assert passed > 100, (
        "checkov scanned far fewer checks than the code has: did it parse the tree?"
    )
    assert not unexpected, "\n".join(
        f"{f.check} {f.resource} ({f.file}): {f.title}" for f in unexpected
    )


def test_every_skip_still_fails(checkov):
    failures, _ = checkov
    failing = {(f.check, f.resource) for f in failures}
    stale = [skip for skip in tf.checkov_skips() if skip not in failing]
    assert not stale, f"these no longer fail; remove them from checkov-skips.yaml: {stale}"


def test_every_skip_has_a_reason():
    assert all(len(reason) > 40 for reason in tf.checkov_skips().values())
