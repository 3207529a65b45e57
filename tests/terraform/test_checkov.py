"""checkov's terraform framework over terraform/: no failure outside terraform/checkov-skips.yaml,
and no entry there that no longer fails."""

from __future__ import annotations

import shutil

import pytest
import yaml

from ops import tf
from ops.tools import run_checkov


@pytest.fixture(scope="module")
def checkov(tmp_path_factory) -> tuple[dict[tuple[str, str], str], int]:
    """(check, resource) -> what failed, for each failure; and how many checks passed."""
    # A copy without .terraform folders and tfvars: what is committed, nothing downloaded.
    tree = tmp_path_factory.mktemp("checkov") / "terraform"
    shutil.copytree(
        tf.TERRAFORM_DIR, tree, ignore=shutil.ignore_patterns(".terraform*", "*.tfvars")
    )
    failed, passed = {}, 0
    for part in run_checkov("terraform", "--directory", str(tree)):
        passed += part["summary"]["passed"]
        for check in part["results"]["failed_checks"]:
            where = f"{check['resource']} ({check['file_path']}): {check['check_name']}"
            failed[(check["check_id"], check["resource"])] = where
    return failed, passed


def skips() -> dict[tuple[str, str], str]:
    """(check, resource) -> reason, from terraform/checkov-skips.yaml."""
    entries = yaml.safe_load((tf.TERRAFORM_DIR / "checkov-skips.yaml").read_text())
    return {(e["check"], r): e["reason"] for e in entries for r in e["resources"]}


def test_no_failure_outside_the_skip_list(checkov):
    failed, passed = checkov
    assert passed > 100, "checkov ran far fewer checks than the code has: did it parse the tree?"
    unexpected = [
        f"{check} {where}" for (check, r), where in failed.items() if (check, r) not in skips()
    ]
    assert not unexpected, "\n".join(unexpected)


def test_every_skip_still_fails_and_says_why(checkov):
    failed, _ = checkov
    stale = [skip for skip in skips() if skip not in failed]
    assert not stale, f"these pass now; remove them from terraform/checkov-skips.yaml: {stale}"
    assert all(len(reason) > 40 for reason in skips().values())
