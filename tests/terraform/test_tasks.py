"""The invoke tf.* tasks without a cloud, against a recording fake of invoke's Context: the
stacks a change touches and their order, the terraform commands of tf.plan / tf.apply, the
refusals, and the GitHub CLI calls of tf.comment and tf.drift."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from invoke import Context, Result
from invoke.exceptions import Exit

from ops import k8s, tf, tools
from ops.release import ImageRef, set_image

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RENDERED = k8s.render


class Recorder(Context):
    """Records every command; answers it with the first (pattern, Result) that matches."""

    def __init__(self, *answers: tuple[str, Result]):
        super().__init__()
        self.commands: list[str] = []
        self.answers = answers

    def run(self, command, **kwargs):
        self.commands.append(command)
        return next((r for p, r in self.answers if re.search(p, command)), Result(command))

    def words(self, position: int) -> list[str]:
        """The n-th word of each command (terraform's subcommand is 2, after -chdir)."""
        return [command.split()[position] for command in self.commands]


@pytest.fixture
def terraform_tree(tmp_path, monkeypatch):
    """terraform/ in a scratch folder with every .example copied to its file, a gh on PATH
    that never runs (the Recorder answers for it), HEAD at COMMIT and clean."""
    tree = tmp_path / "terraform"
    shutil.copytree(tf.TERRAFORM_DIR, tree, ignore=shutil.ignore_patterns(".terraform*"))
    for example in tree.rglob("*.example"):
        shutil.copy(example, example.with_suffix(""))
    monkeypatch.setattr(tf, "TERRAFORM_DIR", tree)
    monkeypatch.setattr(tf, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(k8s, "render", lambda target: f"kind: AppProject # {target}\n")
    monkeypatch.setattr(tf, "download", lambda url, sha256: f"# {url}\n")
    monkeypatch.setattr(tf, "source_commit", lambda: COMMIT)
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "test-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "gh").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "gh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{tf.os.environ['PATH']}")
    return tree


def saved(tree, cloud, env, stack):
    plan = tree / cloud / "stacks" / stack / ".terraform" / env / "plans" / f"{COMMIT}.tfplan"
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text("a saved plan")
    return plan


def passed(plan: str) -> dict:
    """What a plan command gets from invoke besides the settings files: its last var file."""
    return json.loads(Path(plan.rsplit("-var-file=", 1)[1]).read_text())


@pytest.mark.parametrize(
    ("stack", "env", "message"),
    [
        ("gcp", "stage", "unknown stack 'gcp'"),
        ("aws/app-platform", "stage", "unknown stack 'aws/app-platform'"),
        ("aws/infra", "dev", "--env must be one of stage, prod"),
    ],
)
def test_rejects_unknown_stacks_and_environments(stack, env, message):
    with pytest.raises(Exit, match=message):
        tf.plan(Recorder(), stack=[stack], env=env)


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ("terraform/aws/modules/network/main.tf", ["aws/infra", "aws/tooling", "aws/apps"]),
        ("terraform/modules/cluster-config/main.tf", ["do/apps", "aws/apps"]),
        ("kustomize/argocd/do/prod/kustomization.yaml", ["do/apps"]),
        ("terraform/do/common.tfvars.example", ["do/shared", "do/infra", "do/tooling", "do/apps"]),
        ("app/todos/views.py", []),
    ],
)
def test_stacks_lists_what_a_change_touches_and_downstream_in_apply_order(
    terraform_tree, monkeypatch, capsys, changed, expected
):
    monkeypatch.setattr(tf, "git", lambda *args: changed)
    tf.stacks(Recorder(), changed_from="main")
    shared = [name for name in expected if name.endswith("/shared")]
    per_env = [name for name in expected if name not in shared]
    listed = shared + [f"{name} ({env})" for env in tf.ENVIRONMENTS for name in per_env]
    assert capsys.readouterr().out.splitlines() == (listed or ["no stack is touched"])


def test_stacks_as_json_leaves_out_a_cloud_without_backend_files(terraform_tree, capsys):
    for file in (terraform_tree / "do" / "backend").glob("*.hcl"):
        file.unlink()
    tf.stacks(Recorder(), json_=True)
    captured = capsys.readouterr()
    found = json.loads(captured.out)
    assert found["shared"] == found["environments"] == ["aws"]
    assert found["targets"][:2] == [
        {"name": "aws/shared", "cloud": "aws", "env": "shared", "stack": "shared"},
        {"name": "aws/infra", "cloud": "aws", "env": "stage", "stack": "infra"},
    ]
    assert len(found["targets"]) == 1 + 2 * 3 and "terraform/do/backend" in captured.err


@pytest.mark.parametrize(("env", "manifest"), [("stage", "argo-cd"), ("prod", "argo-cd-ha")])
def test_plan_inits_each_stack_against_its_state_and_plans_it_with_its_var_files(
    terraform_tree, env, manifest
):
    context = Recorder()
    tf.plan(context, stack=["aws"], env=env)
    inits, plans = context.commands[0::2], context.commands[1::2]
    assert context.words(2) == ["init", "plan"] * 3
    for stack, init, plan in zip(("infra", "tooling", "apps"), inits, plans, strict=True):
        assert f"-backend-config={terraform_tree}/aws/backend/{env}.hcl" in init
        assert f"-backend-config=key=aws/{env}/{stack}.tfstate" in init
        data = terraform_tree / "aws" / "stacks" / stack / ".terraform" / env
        assert f"-out={data}/plans/{COMMIT}.tfplan" in plan and "-lock=false" not in plan
        assert passed(plan)["environment"] == env
    common = f"-var-file={terraform_tree}/aws/common.tfvars"
    assert plans[0].index(common) < plans[0].index(f"infra/{env}.tfvars"), "the stack's file wins"
    assert f"tooling/{env}.tfvars" not in plans[1], "tooling has no var file of its own"
    pinned = tf.VERSIONS["manifests"][manifest]["url"]
    assert passed(plans[1])["argocd_install_yaml"] == f"# {pinned}\n", "the pinned Argo CD"
    assert passed(plans[2])["argocd_manifests_yaml"].startswith("kind: AppProject")


def test_shared_has_one_state_per_account_and_a_pull_request_plan_takes_no_lock(terraform_tree):
    context = Recorder()
    tf.plan(context, stack=["do/shared"], lock=False)
    init, plan = context.commands
    assert "key=do/shared.tfstate" in init and "do/backend/shared.hcl" in init
    assert "shared/shared.tfvars" in plan and "-lock=false" in plan
    assert passed(plan) == {}, "no environment"


def test_digitalocean_needs_its_token_and_spaces_keys(terraform_tree, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(Exit, match=r"AWS_ACCESS_KEY_ID is not set\. Fix: export an API token"):
        tf.plan(Recorder(), stack=["do"], env="stage")


@pytest.mark.parametrize("cloud", tf.CLOUDS)
def test_apps_creates_the_application_only_once_the_overlay_pins_a_release(
    terraform_tree, tmp_path, monkeypatch, cloud
):
    """Before the first `invoke deploy` the overlay pins the template's placeholder image: an
    Application would sync it (ImagePullBackOff, a failed migrate hook, Degraded)."""
    shutil.copytree(k8s.KUSTOMIZE_DIR, tmp_path / "kustomize")
    monkeypatch.setattr(k8s, "KUSTOMIZE_DIR", tmp_path / "kustomize")
    monkeypatch.setattr(k8s, "render", RENDERED)

    def kinds() -> list[str]:
        context = Recorder()
        tf.plan(context, stack=[f"{cloud}/apps"], env="stage")
        docs = k8s.documents(passed(context.commands[1])["argocd_manifests_yaml"])
        return sorted(doc["kind"] for doc in docs)

    before = kinds()
    assert "Application" not in before and "AppProject" in before
    overlay = tmp_path / f"kustomize/overlays/{cloud}/stage/kustomization.yaml"
    release = ImageRef("registry.example.com/todo", "a" * 40, "sha256:" + "b" * 64)
    overlay.write_text(set_image(overlay.read_text(), release))
    assert kinds() == sorted([*before, "Application"])


def test_apply_refuses_without_a_saved_plan_of_this_commit_or_with_changes(
    terraform_tree, monkeypatch
):
    saved(terraform_tree, "aws", "stage", "infra")  # tooling has none
    context = Recorder()
    with pytest.raises(Exit) as refused:
        tf.apply(context, stack=["aws/infra", "aws/tooling"], env="stage", yes=True)
    assert f"there is none of {COMMIT[:12]} for aws/tooling (stage)" in str(refused.value)
    assert "`invoke tf.plan --stack=aws/infra --stack=aws/tooling --env=stage`" in str(
        refused.value
    )
    assert context.commands == [], "nothing applied: not even infra, which has its plan"
    monkeypatch.setattr(tf, "source_commit", lambda: f"{COMMIT}-dirty")
    with pytest.raises(Exit, match=r"has uncommitted changes\. Fix: commit, run `invoke tf.plan"):
        tf.apply(context, stack=["aws/infra"], env="stage", yes=True)


def test_apply_applies_each_saved_plan_in_order_once(terraform_tree):
    plans = [saved(terraform_tree, "do", "prod", stack) for stack in ("infra", "tooling", "apps")]
    context = Recorder()
    tf.apply(context, stack=["do"], env="prod", yes=True)
    assert context.words(2) == ["apply"] * 3
    assert [command.rsplit(" ", 1)[1] for command in context.commands] == list(map(str, plans))
    assert not any(plan.exists() for plan in plans), "a saved plan is applied once"


def test_apply_in_ci_plans_each_stack_after_its_upstream_is_applied(terraform_tree, monkeypatch):
    monkeypatch.setattr(tf, "git", lambda *args: "terraform/aws/stacks/tooling/main.tf")
    context = Recorder()
    tf.apply(context, stack=["aws"], env="stage", changed_from="HEAD~1", plan=True, yes=True)
    assert context.words(2) == ["init", "plan", "apply"] * 2
    assert "/stacks/tooling" in context.commands[2] and "/stacks/apps" in context.commands[5]


def test_apply_shows_the_plan_and_without_a_terminal_asks_for_yes(terraform_tree, monkeypatch):
    saved(terraform_tree, "aws", "stage", "infra")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    context = Recorder()
    with pytest.raises(Exit, match="run again with --yes"):
        tf.apply(context, stack=["aws/infra"], env="stage")
    assert context.words(2) == ["show"], "it showed the plan and applied nothing"


@pytest.mark.parametrize("existing", ["", "555\n"])
def test_comment_creates_or_updates_the_stacks_own_comment(terraform_tree, existing):
    saved(terraform_tree, "aws", "stage", "infra")
    context = Recorder(
        (r"show -json", Result(json.dumps({"resource_changes": []}))),
        (r"show -no-color", Result("No changes. Your infrastructure matches the configuration.")),
        (r"gh api --paginate", Result(existing)),
    )
    tf.comment(context, stack=["aws/infra"], env="stage", pr=7)
    gh = [command.split(" ", 1)[1] for command in context.commands if " show " not in command]
    assert gh[0].startswith("api --paginate 'repos/{owner}/{repo}/issues/7/comments' --jq")
    assert '"<!-- Terraform plan: aws/infra (stage) -->"' in gh[0], "found by its own marker"
    edit = "PATCH 'repos/{owner}/{repo}/issues/comments/555'" if existing else "POST"
    assert gh[1].startswith(f"api --method {edit}") and len(gh) == 2


CHANGED = {"address": "aws_s3_bucket.logs", "change": {"actions": ["update"]}}


def drift_context(exited: int, issue: str) -> Recorder:
    return Recorder(
        (r" plan ", Result(exited=exited)),
        (r"show -json", Result(json.dumps({"resource_changes": [CHANGED]}))),
        (r"gh issue list", Result(issue)),
    )


@pytest.mark.parametrize(
    ("exited", "issue", "expected"),
    [
        (2, "", ["label create terraform-drift", "issue create --label terraform-drift"]),
        (2, "12\n", ["issue edit 12 --body-file"]),
        (0, "12\n", ["issue close 12 --comment"]),
        (0, "", []),
    ],
)
def test_drift_opens_updates_and_closes_one_issue_per_stack(
    terraform_tree, exited, issue, expected
):
    context = drift_context(exited, issue)
    tf.drift(context, stack=["aws/tooling"], env="prod")
    plan = next(command for command in context.commands if " plan " in command)
    assert "-detailed-exitcode" in plan and "-lock=false" in plan
    gh = [c.split(" ", 1)[1] for c in context.commands if c.split()[0].endswith("/gh")]
    assert gh[0].startswith("issue list --state open --label terraform-drift")
    assert '"Terraform drift: aws/tooling (prod)"' in gh[0]
    assert len(gh) == 1 + len(expected)
    for command, start in zip(gh[1:], expected, strict=True):
        assert command.startswith(start), command
    with pytest.raises(Exit, match=r"terraform plan of aws/infra \(stage\) failed \(exit 1\)"):
        tf.drift(drift_context(1, ""), stack=["aws/infra"], env="stage")


def test_validate_offline_without_a_mirror_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("TF_PROVIDER_MIRROR", raising=False)
    with pytest.raises(Exit, match=r"TF_PROVIDER_MIRROR .* `terraform providers mirror`"):
        tf.validate(Recorder(), offline=True)


def test_bootstrap_plans_with_local_state_then_applies_after_a_yes(terraform_tree, monkeypatch):
    monkeypatch.setattr(tf, "confirm", lambda question: True)
    context = Recorder()
    tf.bootstrap(context, cloud="aws")
    assert context.words(2) == ["init", "plan", "apply"]
    assert all(f"-chdir={terraform_tree}/aws/bootstrap" in c for c in context.commands)
    assert "-backend-config" not in context.commands[0], "the bootstrap keeps its state locally"
    assert f"-var-file={terraform_tree}/aws/common.tfvars" in context.commands[1]
    monkeypatch.setattr(tf, "confirm", lambda question: False)
    context = Recorder()
    with pytest.raises(Exit, match="nothing changed"):
        tf.bootstrap(context, cloud="do", destroy=True)
    assert context.words(2) == ["init", "plan"] and "-destroy" in context.commands[1]


def test_the_commit_of_a_plan_is_dirty_with_changes_but_not_with_provider_lock_files(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    stack = tmp_path / "terraform" / "aws" / "stacks" / "infra"
    stack.mkdir(parents=True)
    (stack / "main.tf").write_text("# a stack\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "a stack"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tools, "REPO_ROOT", tmp_path)
        assert tf.source_commit() == head.strip()
        (stack / ".terraform.lock.hcl").write_text("# written by terraform init\n")
        assert tf.source_commit() == head.strip(), "init's lock file is not a change"
        (stack / "main.tf").write_text("# a changed stack\n")
        assert tf.source_commit() == f"{head.strip()}-dirty"
