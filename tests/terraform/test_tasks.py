"""The invoke tf.* tasks, without a cloud: argument checks, preflight messages, and the
terraform commands `tf.plan` / `tf.apply` run, in order, with the right state key and vars."""

from __future__ import annotations

import shutil

import pytest
from invoke import MockContext, Result
from invoke.exceptions import Exit

from ops import tf


@pytest.fixture
def terraform_tree(tmp_path, monkeypatch):
    """terraform/ copied to a scratch folder, with a backend.hcl and tfvars for every stack."""
    tree = tf.copy_tree(tmp_path / "terraform")
    for cloud in tf.CLOUDS:
        shutil.copy(tree / cloud / "backend.hcl.example", tree / cloud / "backend.hcl")
        for example in (tree / cloud / "stacks").glob("*/*.tfvars.example"):
            shutil.copy(example, example.with_suffix(""))
    monkeypatch.setattr(tf, "TERRAFORM_DIR", tree)
    monkeypatch.setattr(tf, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(tf, "render", lambda target: f"# rendered {target}\n")
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "test-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    return tree


def commands(context: MockContext) -> list[str]:
    return [call.args[0] for call in context.run.call_args_list]


def test_state_keys():
    assert tf.state_key("aws", "prod", "infra") == "aws/prod/infra.tfstate"
    assert tf.state_key("do", "stage", "shared") == "do/shared.tfstate"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"cloud": "gcp", "env": "stage"}, "--cloud must be one of do, aws"),
        ({"cloud": "aws", "env": "dev"}, "--env must be one of stage, prod"),
        ({"cloud": "aws", "env": "stage", "stack": "network"}, "unknown stack 'network'"),
    ],
)
def test_rejects_unknown_choices(arguments, message):
    with pytest.raises(Exit, match=message):
        tf.plan(MockContext(), **arguments)


def test_plan_runs_every_environment_stack_in_order(terraform_tree):
    context = MockContext(run=Result(), repeat=True)
    tf.plan(context, cloud="aws", env="stage")
    run = commands(context)
    stacks = [c.split("-chdir=")[1].split()[0].rsplit("/", 1)[1] for c in run]
    assert stacks == ["infra", "infra", "tooling", "tooling", "apps", "apps"]
    inits, plans = run[0::2], run[1::2]
    assert all(" init " in c and "-backend-config=key=aws/stage/" in c for c in inits)
    assert "key=aws/stage/tooling.tfstate" in inits[1]
    assert all(" plan " in c and "-var=environment=stage" in c for c in plans)
    assert "stage.tfvars" in plans[0] and "argocd-aws-stage.tfvars.json" in plans[2]
    assert not any(" apply " in c for c in run)


def test_apply_with_yes_applies_each_stack_after_its_plan(terraform_tree):
    context = MockContext(run=Result(), repeat=True)
    tf.apply(context, cloud="do", env="prod", stack="tooling", yes=True)
    run = commands(context)
    assert [c.split()[2] for c in run] == ["init", "plan", "apply"]
    assert "key=do/prod/tooling.tfstate" in run[0]
    assert run[2].endswith("tooling.tfplan")


def test_apply_without_a_terminal_asks_for_yes(terraform_tree, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    context = MockContext(run=Result(), repeat=True)
    with pytest.raises(Exit, match="run again with --yes"):
        tf.apply(context, cloud="aws", env="stage", stack="infra")
    assert not any(" apply " in c for c in commands(context))


def test_shared_stack_has_one_state_per_account(terraform_tree):
    context = MockContext(run=Result(), repeat=True)
    tf.plan(context, cloud="aws", env="prod", stack="shared")
    init, plan = commands(context)
    assert "key=aws/shared.tfstate" in init
    assert "shared.tfvars" in plan and "-var=environment" not in plan


def test_missing_backend_config_names_the_fix(terraform_tree):
    (terraform_tree / "aws" / "backend.hcl").unlink()
    with pytest.raises(Exit, match=r"backend.hcl is missing. Fix: copy backend.hcl.example"):
        tf.plan(MockContext(run=Result(), repeat=True), cloud="aws", env="stage")


def test_missing_tfvars_names_the_example(terraform_tree):
    (terraform_tree / "do" / "stacks" / "infra" / "prod.tfvars").unlink()
    with pytest.raises(Exit, match=r"prod.tfvars is missing. Fix: copy prod.tfvars.example"):
        tf.plan(MockContext(run=Result(), repeat=True), cloud="do", env="prod", stack="infra")


def test_digitalocean_needs_its_token(terraform_tree, monkeypatch):
    monkeypatch.delenv("DIGITALOCEAN_TOKEN")
    with pytest.raises(Exit, match="DIGITALOCEAN_TOKEN is not set"):
        tf.plan(MockContext(run=Result(), repeat=True), cloud="do", env="stage")


def test_every_environment_stack_has_tfvars_examples_for_both_environments():
    for cloud in tf.CLOUDS:
        for stack in tf.ENVIRONMENT_STACKS:
            for env in tf.ENVIRONMENTS:
                assert (tf.stack_dir(cloud, stack) / f"{env}.tfvars.example").is_file(), (
                    f"{cloud}/{stack}/{env}"
                )
        assert (tf.stack_dir(cloud, "shared") / "shared.tfvars.example").is_file()
        assert (tf.TERRAFORM_DIR / cloud / "backend.hcl.example").is_file()
