"""terraform itself, offline: `invoke tf.validate --offline` runs fmt -check over the tree, then
init (from the provider mirror), validate and `terraform test` with mock_provider "aws" in
every configuration that needs only hashicorp/aws. GitHub Actions runs the rest."""

from __future__ import annotations

import os
from fnmatch import fnmatch
from pathlib import Path

import pytest
from invoke import Context

from ops import tf

OFFLINE = [n for n in tf.configurations() if any(fnmatch(n, p) for p in tf.OFFLINE)]
MIRROR = Path(os.environ.get("TF_PROVIDER_MIRROR") or "/nonexistent")


def test_every_offline_configuration_has_terraform_tests():
    # A renamed folder must not drop out of the offline checks unnoticed.
    assert all(any(fnmatch(name, pattern) for name in OFFLINE) for pattern in tf.OFFLINE)
    untested = [n for n in OFFLINE if not any((tf.TERRAFORM_DIR / n).glob("tests/*.tftest.hcl"))]
    assert not untested, "the aws-only configurations are the ones tested here: add tests"


def test_validate_offline_formats_inits_validates_and_tests_every_aws_only_configuration(capfd):
    if not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip("no Terraform provider mirror in TF_PROVIDER_MIRROR (terraform/README.md)")
    tf.validate(Context(), offline=True)  # a failing step stops it with terraform's output
    ran = capfd.readouterr()
    assert "fmt -recursive -check -diff" in ran.err
    for name in OFFLINE:
        for step in ("init -backend=false -plugin-dir=", "validate", "test"):
            assert f"/terraform/{name} {step}" in ran.err, f"{name}: no terraform {step}"
    assert "/terraform/do/" not in ran.err and ran.out.endswith("tf.validate: ok\n")
