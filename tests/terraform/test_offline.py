"""terraform fmt, and init/validate/test of every configuration that needs only hashicorp/aws,
from the provider mirror (no registry). The tests use mock_provider "aws"."""

from __future__ import annotations

import subprocess

import pytest

from ops import tf

AWS_ONLY = [c.name for c in tf.configurations() if c.aws_only]


def test_fmt_is_clean():
    terraform = tf.require("terraform", tf.TERRAFORM_FIX)
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(tf.TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        env=tf.terraform_env(),
        check=False,
    )
    assert result.returncode == 0, f"run `uv run invoke tf.fmt`:\n{result.stdout}{result.stderr}"


def test_the_aws_modules_and_infrastructure_stacks_need_only_the_aws_provider():
    # What the offline tests below cover; a helm or kubernetes provider slipping into one
    # of these would silently take it out of the mirror-backed checks.
    expected = {c.name for c in tf.configurations() if c.name.startswith("aws/modules/")}
    expected |= {"aws/stacks/shared", "aws/stacks/infra"}
    assert expected <= set(AWS_ONLY)
    assert all(tf.configuration_at(tf.TERRAFORM_DIR / name).has_tests() for name in expected), (
        "every aws-only configuration has terraform tests"
    )


@pytest.mark.parametrize("configuration", AWS_ONLY)
def test_init_from_mirror(offline_validation, configuration):
    outcome = offline_validation[(configuration, "init")]
    assert outcome == "ok", outcome


@pytest.mark.parametrize("configuration", AWS_ONLY)
def test_validate(offline_validation, configuration):
    assert offline_validation[(configuration, "validate")] == "ok", offline_validation[
        (configuration, "validate")
    ]


@pytest.mark.parametrize("configuration", AWS_ONLY)
def test_terraform_test(offline_validation, configuration):
    assert offline_validation[(configuration, "test")] == "ok", offline_validation[
        (configuration, "test")
    ]
