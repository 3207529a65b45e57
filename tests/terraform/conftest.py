"""Shared by the terraform tests: HCL as python-hcl2 reads it, the offline terraform runs, and
the rendered overlays (each computed once per session)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import hcl2
import pytest

from ops import k8s, tf

HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)


@cache
def parse(file: Path) -> dict:
    """One .tf or .tfvars file: blocks are lists of dicts, strings unquoted, no comments."""
    with file.open() as handle:
        document = hcl2.load(handle, serialization_options=HCL_OPTIONS)
    return {key: value for key, value in document.items() if not key.startswith("__")}


def hcl(configuration: str) -> dict[str, list]:
    """Every top-level block of a configuration under terraform/, merged by kind."""
    merged: dict[str, list] = {}
    for file in sorted((tf.TERRAFORM_DIR / configuration).glob("*.tf")):
        for kind, blocks in parse(file).items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def named(configuration: str, kind: str) -> dict[str, dict]:
    """The blocks of one kind with a single label (variable, module, locals) by name."""
    return {
        name: body for block in hcl(configuration).get(kind, []) for name, body in block.items()
    }


@pytest.fixture(scope="session")
def aws_overlays() -> dict[str, list[dict]]:
    """Objects of the rendered AWS overlays, by environment."""
    return {env: k8s.documents(k8s.render(f"aws/{env}")) for env in tf.ENVIRONMENTS}


@pytest.fixture(scope="session")
def do_overlays() -> dict[str, list[dict]]:
    """Objects of the rendered DigitalOcean overlays, by environment."""
    return {env: k8s.documents(k8s.render(f"do/{env}")) for env in tf.ENVIRONMENTS}


def helm_values(configuration: str, release: str) -> dict:
    """The values of a helm_release written as `values = [yamlencode({...})]`, as HCL reads
    them (references stay `${...}` strings)."""
    (block,) = [
        block["helm_release"][release]
        for block in hcl(configuration).get("resource", [])
        if release in block.get("helm_release", {})
    ]
    (expression,) = block["values"]
    body = expression.removeprefix("${yamlencode(").removesuffix(")}")
    return hcl2.loads(f"values = {body}", serialization_options=HCL_OPTIONS)["values"]
