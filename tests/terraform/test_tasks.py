"""The invoke tf.* tasks without a cloud: the terraform commands tf.plan / tf.apply run, in
order, with the right state key and var files; and the preflight, which stops before any of
them with the missing piece and its fix."""

from __future__ import annotations

import json
import shutil

import pytest
from invoke import MockContext, Result
from invoke.exceptions import Exit

from ops import k8s, tf
from ops.release import ImageRef, set_image


@pytest.fixture
def terraform_tree(tmp_path, monkeypatch):
    """terraform/ in a scratch folder, every .example copied to the file it stands for."""
    tree = tmp_path / "terraform"
    shutil.copytree(tf.TERRAFORM_DIR, tree, ignore=shutil.ignore_patterns(".terraform*"))
    for example in tree.rglob("*.example"):
        shutil.copy(example, example.with_suffix(""))
    monkeypatch.setattr(tf, "TERRAFORM_DIR", tree)
    monkeypatch.setattr(tf, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(tf, "render", lambda target: f"# rendered {target}\n")
    # Argo CD's install manifest, as the pinned download would return it.
    monkeypatch.setattr(
        tf, "download", lambda url, sha256: f"# {url}\nkind: CustomResourceDefinition\n"
    )
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "test-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    return tree


def run(task, **arguments) -> list[str]:
    """The commands a task ran (each terraform call succeeds)."""
    context = MockContext(run=Result(), repeat=True)
    task(context, **arguments)
    return [call.args[0] for call in context.run.call_args_list]


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


def test_plan_inits_and_plans_every_environment_stack_in_order(terraform_tree):
    commands = run(tf.plan, cloud="aws", env="stage")
    stacks = [command.split("-chdir=")[1].split()[0].rsplit("/", 1)[1] for command in commands]
    assert stacks == ["infra", "infra", "tooling", "tooling", "apps", "apps"]
    inits, plans = commands[0::2], commands[1::2]
    for stack, init in zip(("infra", "tooling", "apps"), inits, strict=True):
        assert " init " in init and f"-backend-config=key=aws/stage/{stack}.tfstate" in init
        assert f"-backend-config={terraform_tree}/aws/backend.hcl" in init
    assert all(" plan " in plan and "-var=environment=stage" in plan for plan in plans)
    common = f"-var-file={terraform_tree}/aws/common.tfvars"
    assert plans[0].index(common) < plans[0].index("infra/stage.tfvars"), "the stack's file wins"
    assert common in plans[1] and "tooling/stage.tfvars" not in plans[1], "tooling has no own"
    assert plans[1].endswith("argocd-install-stage.tfvars.json"), "the pinned Argo CD"
    assert plans[2].endswith("argocd-aws-stage.tfvars.json")
    assert not any(" apply " in command for command in commands)


def test_shared_stack_has_one_state_per_account_and_no_environment(terraform_tree):
    init, plan = run(tf.plan, cloud="do", env="prod", stack="shared")
    assert "key=do/shared.tfstate" in init
    assert "do/common.tfvars" in plan and "shared/shared.tfvars" in plan
    assert "-var=environment" not in plan


def test_apply_with_yes_applies_each_plan_it_made(terraform_tree):
    commands = run(tf.apply, cloud="do", env="prod", stack="tooling", yes=True)
    assert [command.split()[2] for command in commands] == ["init", "plan", "apply"]
    assert "key=do/prod/tooling.tfstate" in commands[0]
    assert commands[2].endswith("tooling.tfplan")


def test_apply_without_a_terminal_asks_for_yes(terraform_tree, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    context = MockContext(run=Result(), repeat=True)
    with pytest.raises(Exit, match="run again with --yes"):
        tf.apply(context, cloud="aws", env="stage", stack="infra")
    assert not any(" apply " in call.args[0] for call in context.run.call_args_list)


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("aws/backend.hcl", r"aws/backend.hcl is missing. Fix: copy backend.hcl.example"),
        ("aws/common.tfvars", r"aws/common.tfvars is missing. Fix: copy common.tfvars.example"),
        ("aws/stacks/apps/stage.tfvars", r"apps/stage.tfvars is missing. Fix: copy stage.tfvars"),
    ],
)
def test_preflight_names_the_missing_file_before_any_stack_runs(terraform_tree, missing, message):
    (terraform_tree / missing).unlink()
    context = MockContext(run=Result(), repeat=True)
    with pytest.raises(Exit, match=message):
        tf.apply(context, cloud="aws", env="stage", yes=True)
    assert context.run.call_args_list == [], "nothing ran: infra is not applied without apps"


def test_digitalocean_needs_its_token_and_spaces_keys(terraform_tree, monkeypatch):
    monkeypatch.delenv("DIGITALOCEAN_TOKEN")
    with pytest.raises(Exit, match="DIGITALOCEAN_TOKEN is not set"):
        run(tf.plan, cloud="do", env="stage")
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "test-token")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(Exit, match=r"AWS_ACCESS_KEY_ID is not set\. Fix: export your Spaces"):
        run(tf.plan, cloud="do", env="stage")


def test_validate_offline_without_a_mirror_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("TF_PROVIDER_MIRROR", raising=False)
    context = MockContext(run=Result(), repeat=True)
    with pytest.raises(Exit, match=r"TF_PROVIDER_MIRROR .* `terraform providers mirror`"):
        tf.validate(context, offline=True)


@pytest.mark.parametrize("cloud", tf.CLOUDS)
def test_apps_stack_creates_the_application_only_once_the_overlay_pins_a_release(
    tmp_path, monkeypatch, cloud
):
    """Before the first `invoke deploy`, the overlay's image is the template's placeholder:
    an Application would sync it (ImagePullBackOff, a failed migrate hook, Degraded)."""
    tree = tmp_path / "kustomize"
    shutil.copytree(k8s.KUSTOMIZE_DIR, tree)
    monkeypatch.setattr(k8s, "KUSTOMIZE_DIR", tree)

    def kinds() -> list[str]:
        var_file = tf._argocd_var_file(cloud, "stage", tmp_path)
        rendered = json.loads(var_file.read_text())["argocd_manifests_yaml"]
        return sorted(doc["kind"] for doc in k8s.documents(rendered))

    assert kinds() == ["AppProject"]
    overlay = tree / f"overlays/{cloud}/stage/kustomization.yaml"
    release = ImageRef("registry.example.com/todo", "a" * 40, "sha256:" + "b" * 64)
    overlay.write_text(set_image(overlay.read_text(), release))
    assert kinds() == ["AppProject", "Application"]
