"""terraform itself, offline: fmt over the tree, and init (from the provider mirror), validate
and `terraform test` with mock_provider "aws" of every configuration that needs only
hashicorp/aws. The rest needs the registry: GitHub Actions runs the same steps for it."""

from __future__ import annotations

import subprocess
from fnmatch import fnmatch

import pytest

from ops import tf

OFFLINE = [c.name for c in tf.configurations() if c.offline]


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


def test_every_offline_pattern_names_configurations_that_have_tests():
    # A renamed folder must not drop out of the offline checks unnoticed.
    for pattern in tf.OFFLINE:
        assert any(fnmatch(name, pattern) for name in OFFLINE), pattern
    untested = [n for n in OFFLINE if not any((tf.TERRAFORM_DIR / n).glob("tests/*.tftest.hcl"))]
    assert not untested, "the aws-only configurations are the ones tested here: add tests"


@pytest.mark.parametrize("configuration", OFFLINE)
def test_init_validate_and_test(offline_validation, configuration):
    report = offline_validation[configuration]
    assert [step for step, _ in report] == ["init", "validate", "test"], report
    for step, outcome in report:
        assert outcome == "ok", f"terraform {step} in {configuration}: {outcome}"
