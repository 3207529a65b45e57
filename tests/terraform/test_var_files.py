"""The var-file layout (terraform/README.md, 'Settings'): terraform/<cloud>/common.tfvars sets
what every stack of the cloud declares, alike; each stack's own example sets only what that
stack declares; together with what `invoke tf.plan` adds, they leave no variable unset."""

from __future__ import annotations

import pytest

from ops import tf
from tests.terraform.conftest import named, parse

STACKS = [
    (c, s)
    for c in tf.CLOUDS
    for s in tf.ALL_STACKS
    if (tf.TERRAFORM_DIR / c / "stacks" / s).is_dir()
]

# Each stack's var files: `shared` is an environment of its own, App Platform stage only.
VAR_FILES = {"shared": ["shared"], "app-platform": ["stage"]}
STACK_FILES = [(c, s, n) for c, s in STACKS for n in VAR_FILES.get(s, tf.ENVIRONMENTS)]
PASSED_BY_INVOKE = {"environment", "argocd_manifests_yaml", "argocd_install_yaml"}


def common(cloud: str) -> set[str]:
    return set(parse(tf.TERRAFORM_DIR / cloud / "common.tfvars.example"))


@pytest.mark.parametrize("cloud", tf.CLOUDS)
def test_every_stack_declares_the_common_variables_alike(cloud):
    for variable in common(cloud):
        stacks = [s for c, s in STACKS if c == cloud]
        declarations = [named(f"{cloud}/stacks/{s}", "variable").get(variable) for s in stacks]
        assert None not in declarations, f"a stack of {cloud} does not declare {variable}"
        assert all(d == declarations[0] for d in declarations), f"{cloud}: {variable} differs"
    environments = [
        named(f"{c}/stacks/{s}", "variable")["environment"]
        for c in tf.CLOUDS
        for s in tf.STACKS[1:]
    ]
    assert all(d == environments[0] for d in environments), "environment differs"


@pytest.mark.parametrize(
    ("cloud", "stack", "name"), STACK_FILES, ids=[f"{c}/{s}/{n}" for c, s, n in STACK_FILES]
)
def test_the_examples_set_each_stack_exactly_its_variables(cloud, stack, name):
    declared = named(f"{cloud}/stacks/{stack}", "variable")
    own_example = tf.TERRAFORM_DIR / cloud / "stacks" / stack / f"{name}.tfvars.example"
    own = set(parse(own_example)) if own_example.is_file() else set()
    assert not own & common(cloud), f"{stack}'s example repeats a common value"
    given = common(cloud) | own | (PASSED_BY_INVOKE & set(declared))
    assert given <= set(declared), f"undeclared in {stack}: {given - set(declared)}"
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= given, f"{cloud}/{stack} would ask for {required - given}"
