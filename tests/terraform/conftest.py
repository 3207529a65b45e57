"""Offline proof of terraform/: shared, session-scoped results (each is computed once)."""

from __future__ import annotations

import pytest

from ops import k8s, tf


@pytest.fixture(scope="session")
def offline_validation() -> dict[tuple[str, str], str]:
    """(configuration, step) -> outcome of terraform init/validate/test from the provider mirror.

    Needs terraform and a filesystem mirror with hashicorp/aws; where none exists (a
    machine without one) the tests that use this skip and say why.
    """
    if tf.provider_mirror() is None:
        pytest.skip(
            "no Terraform provider mirror with hashicorp/aws (set TF_PROVIDER_MIRROR to one); "
            "`uv run invoke tf.validate` checks the same with the registry"
        )
    aws_only = [c for c in tf.configurations() if c.aws_only]
    report = tf.validation_report(aws_only, registry=False)
    return {(name, step): outcome for name, step, outcome in report}


@pytest.fixture(scope="session")
def provider_schemas() -> dict:
    import json

    return json.loads(tf.SCHEMAS_FILE.read_text())


@pytest.fixture(scope="session")
def aws_overlays() -> dict[str, list[dict]]:
    """Objects of the rendered AWS overlays, by environment."""
    return {env: k8s.documents(k8s.render(f"aws/{env}")) for env in tf.ENVIRONMENTS}


@pytest.fixture(scope="session")
def do_overlays() -> dict[str, list[dict]]:
    """Objects of the rendered DigitalOcean overlays, by environment."""
    return {env: k8s.documents(k8s.render(f"do/{env}")) for env in tf.ENVIRONMENTS}
