"""The pull request comment and drift issue body, from a real plan: tests/terraform/plan_fixture
planned by terraform with hashicorp/aws from the provider mirror (no cloud, no credentials),
then read back with `terraform show -json`, as tf.comment and tf.drift do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ops import tf

FIXTURE = Path(__file__).parent / "plan_fixture"


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> dict[int, tuple[dict, str]]:
    """step -> (plan JSON, plan text) of the fixture after step 1 was applied (local state)."""
    mirror = tf.provider_mirror()
    if mirror is None:
        pytest.skip(f"no Terraform provider mirror: {tf.MIRROR_FIX}")
    folder = tmp_path_factory.mktemp("plan") / "fixture"
    shutil.copytree(FIXTURE, folder)
    terraform = tf.require("terraform", tf.TERRAFORM_FIX)

    def run(*args: str) -> str:
        result = subprocess.run(
            [terraform, *args, "-no-color"],
            cwd=folder,
            env={**os.environ, **tf.TERRAFORM_ENV},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run("init", "-input=false", f"-plugin-dir={mirror}")
    run("apply", "-input=false", "-auto-approve", "-var=step=1")
    plans = {}
    for step in (1, 2):
        run("plan", "-input=false", f"-var=step={step}", f"-out=step{step}.tfplan")
        plans[step] = (
            json.loads(run("show", "-json", f"step{step}.tfplan")),
            run("show", f"step{step}.tfplan"),
        )
    return plans


def test_the_changes_come_from_resource_changes_actions(planned):
    plan_json, _ = planned[2]
    assert tf.plan_changes(plan_json) == {
        "add": ["aws_s3_bucket.logs[0]", "aws_sqs_queue.reminders[0]"],
        "change": ["terraform_data.settings"],
        "destroy": ["terraform_data.legacy_queue[0]"],
        "replace": ["terraform_data.node_group"],
    }


def test_the_report_calls_out_destroys_first_counts_like_terraform_and_collapses_the_plan(planned):
    plan_json, text = planned[2]
    body = tf.report("Terraform plan: aws/infra (stage)", plan_json, text, "the footer")
    lines = body.splitlines()
    assert lines[0] == "<!-- Terraform plan: aws/infra (stage) -->", "the marker the task finds"
    assert lines[1] == "### Terraform plan: aws/infra (stage)"
    caution = lines.index("> [!CAUTION]")
    assert lines[caution + 1 : caution + 4] == [
        "> **This plan destroys 2:**",
        "> - `terraform_data.legacy_queue[0]`",
        "> - `terraform_data.node_group` (replaced)",
    ]
    summary = lines.index("**3 to add, 1 to change, 2 to destroy.**")
    assert caution < summary < lines.index("<details><summary>terraform plan</summary>")
    assert "Plan: 3 to add, 1 to change, 2 to destroy." in text, "the same count as terraform's"
    collapsed = body.split("<details><summary>terraform plan</summary>", 1)[1]
    assert "# aws_sqs_queue.reminders[0] will be created" in collapsed
    assert collapsed.rstrip().endswith("</details>\n\nthe footer")


def test_a_plan_without_changes_says_so_and_warns_of_nothing(planned):
    plan_json, text = planned[1]
    body = tf.report("Terraform drift: aws/infra (stage)", plan_json, text, "")
    assert "**No changes.** The infrastructure matches the configuration." in body
    assert "CAUTION" not in body and "to destroy" not in body


def test_a_long_plan_is_cut_to_fit_a_github_comment(planned):
    plan_json, text = planned[2]
    body = tf.report("Terraform plan: aws/apps (prod)", plan_json, text * 500, "")
    assert len(text * 500) > 65_536 > len(body)
    assert "(cut here: the whole plan is in the job's log)" in body
