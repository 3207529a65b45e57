"""terraform itself, offline: `invoke tf.validate --offline` runs fmt -check over the tree, then
init (from the provider mirror), validate and `terraform test` with mock_provider "aws" in
every configuration that needs only hashicorp/aws. The rest needs the registry: GitHub Actions
runs the same steps for it."""

from __future__ import annotations

from fnmatch import fnmatch

import pytest
from invoke import Context

from ops import tf

OFFLINE = [n for n in tf.configurations() if any(fnmatch(n, p) for p in tf.OFFLINE)]


def test_fmt_is_clean():
    tf.fmt(Context(), check=True)  # fails with the diff: run `uv run invoke tf.fmt`


def test_every_offline_pattern_names_configurations_that_have_tests():
    # A renamed folder must not drop out of the offline checks unnoticed.
    for pattern in tf.OFFLINE:
        assert any(fnmatch(name, pattern) for name in OFFLINE), pattern
    untested = [n for n in OFFLINE if not any((tf.TERRAFORM_DIR / n).glob("tests/*.tftest.hcl"))]
    assert not untested, "the aws-only configurations are the ones tested here: add tests"


def test_validate_offline_tests_every_aws_only_configuration(capfd):
    if tf.provider_mirror() is None:
        pytest.skip(f"no Terraform provider mirror: {tf.MIRROR_FIX}")
    tf.validate(Context(), offline=True)  # a failing step stops it with terraform's output
    ran = capfd.readouterr()
    for name in OFFLINE:
        for step in ("init -backend=false -plugin-dir=", "validate", "test"):
            assert f"/terraform/{name} {step}" in ran.err, f"{name}: no terraform {step}"
    assert "not run offline: do/stacks/infra" in ran.out and ran.out.endswith("tf.validate: ok\n")
