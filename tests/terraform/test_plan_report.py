"""The pull request comment and drift issue body, from a real plan: tests/terraform/plan_fixture
planned by terraform with hashicorp/aws from the provider mirror (no cloud, no credentials),
then reported by tf.report (`terraform show -json` and its text), as tf.comment and tf.drift do."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from invoke import Context

from ops import tf

FIXTURE = Path(__file__).parent / "plan_fixture"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """step -> the report of the fixture's plan of that step, after step 1 was applied."""
    mirror = Path(os.environ.get("TF_PROVIDER_MIRROR") or "/nonexistent")
    if not (mirror / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip("no Terraform provider mirror in TF_PROVIDER_MIRROR (terraform/README.md)")
    terraform_dir = tmp_path_factory.mktemp("plan")
    target = tf.Target("aws", "stage", "fixture")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf, "TERRAFORM_DIR", terraform_dir)
        shutil.copytree(FIXTURE, target.folder)
        c = Context()
        target.terraform(c, "init", f"-plugin-dir={mirror}", hide="out")
        target.terraform(c, "apply", "-auto-approve", "-var=step=1", hide="out")
        reports = {}
        for step in (1, 2):
            plan_file = target.plan_file(f"step{step}")
            plan_file.parent.mkdir(parents=True, exist_ok=True)
            target.terraform(c, "plan", f"-var=step={step}", f"-out={plan_file}", hide="out")
            title = f"Terraform plan: step {step}"
            reports[step] = tf.report(c, target, plan_file, title, "the footer").read_text()
        patch.setattr(tf, "PLAN_TEXT_LIMIT", 200)
        reports["cut"] = tf.report(c, target, plan_file, "", "").read_text()
    return reports


def test_the_report_calls_out_destroys_first_sums_up_like_terraform_and_collapses_the_plan(
    report,
):
    lines = report[2].splitlines()
    assert lines[:2] == ["<!-- Terraform plan: step 2 -->", "### Terraform plan: step 2"]
    caution = lines.index("> [!CAUTION]")
    assert lines[caution + 1 : caution + 4] == [
        "> **This plan destroys 2:**",
        "> - `terraform_data.legacy_queue[0]`",
        "> - `terraform_data.node_group` (replaced)",
    ]
    summary = lines.index("**Plan: 3 to add, 1 to change, 2 to destroy.**")
    assert caution < summary < lines.index("<details><summary>terraform plan</summary>")
    collapsed = report[2].split("<details><summary>terraform plan</summary>", 1)[1]
    assert "# aws_sqs_queue.reminders[0] will be created" in collapsed
    assert collapsed.rstrip().endswith("</details>\n\nthe footer")


def test_a_plan_without_changes_says_so_and_warns_of_nothing(report):
    assert "**No changes. Your infrastructure matches the configuration.**" in report[1]
    assert "CAUTION" not in report[1] and "to destroy" not in report[1]


def test_a_long_plan_is_cut_to_fit_a_github_comment(report):
    assert "(cut here: the whole plan is in the job's log)" in report["cut"]
    assert len(report["cut"]) < len(report[2]) and "terraform_data.settings" in report[2]
