"""The invoke tf.* tasks without a cloud, against a recording fake of invoke's Context: which
stacks a change touches and the order they run in, the terraform commands tf.plan / tf.apply
run (state key, var files, saved plan of the commit), tf.apply's refusal without that plan, the
GitHub CLI calls of tf.comment and tf.drift, and the preflight that stops before any of them."""

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
EMPTY_PLAN = json.dumps({"format_version": "1.2", "resource_changes": []})


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
        """The n-th word after the program of each command (terraform's subcommand is 1)."""
        return [command.split()[position] for command in self.commands]


@pytest.fixture
def terraform_tree(tmp_path, monkeypatch):
    """terraform/ in a scratch folder, every .example copied to the file it stands for, a gh
    on PATH that is never run (the Recorder answers for it), HEAD at COMMIT and clean."""
    tree = tmp_path / "terraform"
    shutil.copytree(tf.TERRAFORM_DIR, tree, ignore=shutil.ignore_patterns(".terraform*"))
    for example in tree.rglob("*.example"):
        shutil.copy(example, example.with_suffix(""))
    monkeypatch.setattr(tf, "TERRAFORM_DIR", tree)
    monkeypatch.setattr(tf, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(k8s, "rendered", lambda target: f"kind: AppProject # {target}\n")
    # Argo CD's install manifest, as the pinned download would return it.
    monkeypatch.setattr(tf, "download", lambda url, sha256: f"# {url}\n")
    monkeypatch.setattr(tf, "source_commit", lambda: COMMIT)
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "test-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "gh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{tf.os.environ['PATH']}")
    return tree


def stacks_of(commands: list[str]) -> list[str]:
    return [command.split("-chdir=")[1].split()[0].split("/stacks/")[1] for command in commands]


def saved(tree, cloud, env, stack):
    plan = tree / cloud / "stacks" / stack / ".terraform" / env / "plans" / f"{COMMIT}.tfplan"
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text("a saved plan")
    return plan


# --- which stacks, in which order ----------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"stack": ["gcp"], "env": "stage"}, "unknown stack 'gcp'"),
        ({"stack": ["aws/network"], "env": "stage"}, "unknown stack 'aws/network'"),
        ({"stack": ["aws/app-platform"], "env": "stage"}, "unknown stack 'aws/app-platform'"),
        ({"stack": ["aws/infra"], "env": "dev"}, "--env must be one of stage, prod"),
    ],
)
def test_rejects_unknown_choices(arguments, message):
    with pytest.raises(Exit, match=message):
        tf.plan(Recorder(), **arguments)


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (["terraform/aws/stacks/infra/main.tf"], {"aws/infra", "aws/tooling", "aws/apps"}),
        (["terraform/aws/modules/network/main.tf"], {"aws/infra", "aws/tooling", "aws/apps"}),
        (["terraform/modules/cluster-config/main.tf"], {"aws/apps", "do/apps"}),
        (["kustomize/argocd/base/application.yaml"], {"aws/apps", "do/apps"}),
        (["kustomize/argocd/do/prod/kustomization.yaml"], {"do/apps"}),
        (["terraform/do/backend/prod.hcl"], {f"do/{stack}" for stack in tf.STACKS}),
        (["terraform/do/stacks/shared/main.tf"], {f"do/{stack}" for stack in tf.STACKS}),
        (["README.md", "app/todos/views.py", "kustomize/overlays/aws/prod/app.yaml"], set()),
    ],
)
def test_a_change_touches_its_stacks_and_everything_downstream(terraform_tree, changed, expected):
    assert {f"{cloud}/{stack}" for cloud, stack in tf.affected(changed)} == expected


def test_the_apply_order_for_a_change_to_aws_infra(terraform_tree, monkeypatch, capsys):
    monkeypatch.setattr(tf, "git", lambda *args: "terraform/aws/stacks/infra/main.tf")
    tf.stacks(Recorder(), changed_from="main")
    assert capsys.readouterr().out.splitlines() == [
        "aws/infra (stage)",
        "aws/tooling (stage)",
        "aws/apps (stage)",
        "aws/infra (prod)",
        "aws/tooling (prod)",
        "aws/apps (prod)",
    ]


def test_stacks_as_json_leaves_out_a_cloud_without_backend_files(terraform_tree, capsys):
    for file in (terraform_tree / "do" / "backend").glob("*.hcl"):
        file.unlink()
    tf.stacks(Recorder(), json_=True)
    captured = capsys.readouterr()
    found = json.loads(captured.out)
    assert found["shared"] == found["environments"] == ["aws"]
    assert [t["name"] for t in found["targets"]][:2] == ["aws/shared", "aws/infra"]
    assert {(t["env"], t["stack"]) for t in found["targets"]} >= {("shared", "shared")}
    assert len(found["targets"]) == 1 + 2 * 3
    assert "do: left out, no terraform/do/backend/*.hcl" in captured.err


# --- plan / apply ------------------------------------------------------------------------------


def passed(plan: str) -> dict:
    """What a plan command gets from invoke besides the settings files: its last var file."""
    return json.loads(Path(plan.rsplit("-var-file=", 1)[1]).read_text())


@pytest.mark.parametrize(("env", "manifest"), [("stage", "argo-cd"), ("prod", "argo-cd-ha")])
def test_plan_inits_and_plans_every_environment_stack_in_order(terraform_tree, env, manifest):
    context = Recorder()
    tf.plan(context, stack=["aws"], env=env)
    commands = context.commands
    assert stacks_of(commands) == ["infra", "infra", "tooling", "tooling", "apps", "apps"]
    inits, plans = commands[0::2], commands[1::2]
    for stack, init in zip(("infra", "tooling", "apps"), inits, strict=True):
        assert " init " in init and f"-backend-config=key=aws/{env}/{stack}.tfstate" in init
        assert f"-backend-config={terraform_tree}/aws/backend/{env}.hcl" in init
    for stack, plan in zip(("infra", "tooling", "apps"), plans, strict=True):
        data = terraform_tree / "aws" / "stacks" / stack / ".terraform" / env
        assert f"-out={data}/plans/{COMMIT}.tfplan" in plan and "-lock=false" not in plan
        assert passed(plan)["environment"] == env
    common = f"-var-file={terraform_tree}/aws/common.tfvars"
    assert plans[0].index(common) < plans[0].index(f"infra/{env}.tfvars"), "the stack's file wins"
    assert common in plans[1] and f"tooling/{env}.tfvars" not in plans[1], "tooling has no own"
    pinned = tf.VERSIONS["manifests"][manifest]["url"]
    assert passed(plans[1])["argocd_install_yaml"] == f"# {pinned}\n", "the pinned Argo CD"
    assert passed(plans[2])["argocd_manifests_yaml"].startswith("kind: AppProject")
    assert not any(" apply " in command for command in commands)


def test_a_pull_request_plan_takes_no_lock(terraform_tree):
    context = Recorder()
    tf.plan(context, stack=["do/infra"], env="prod", lock=False)
    init, plan = context.commands
    assert "-lock=false" in plan and "key=do/prod/infra.tfstate" in init


def test_shared_stack_has_one_state_per_account_and_no_environment(terraform_tree):
    context = Recorder()
    tf.plan(context, stack=["do/shared"])
    init, plan = context.commands
    assert "key=do/shared.tfstate" in init and "do/backend/shared.hcl" in init
    assert "do/common.tfvars" in plan and "shared/shared.tfvars" in plan
    assert passed(plan) == {}, "no environment"


def test_apply_refuses_without_a_saved_plan_of_this_commit(terraform_tree, monkeypatch):
    saved(terraform_tree, "aws", "stage", "infra")  # tooling has none
    context = Recorder()
    with pytest.raises(Exit) as refused:
        tf.apply(context, stack=["aws/infra", "aws/tooling"], env="stage", yes=True)
    message = str(refused.value)
    assert f"there is none of {COMMIT[:12]} for aws/tooling (stage)" in message
    assert "`invoke tf.plan --stack=aws/infra --stack=aws/tooling --env=stage`" in message
    assert context.commands == [], "nothing applied: not even infra, which has its plan"
    monkeypatch.setattr(tf, "source_commit", lambda: "fedcba9876543210" * 2 + "01234567")
    with pytest.raises(Exit, match="none of fedcba987654 for aws/infra"):
        tf.apply(context, stack=["aws/infra"], env="stage", yes=True)


def test_apply_refuses_uncommitted_changes(terraform_tree, monkeypatch):
    saved(terraform_tree, "aws", "stage", "infra")
    monkeypatch.setattr(tf, "source_commit", lambda: f"{COMMIT}-dirty")
    with pytest.raises(
        Exit, match=r"has uncommitted changes\. Fix: commit, then run `invoke tf.plan"
    ):
        tf.apply(Recorder(), stack=["aws/infra"], env="stage", yes=True)


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
    assert context.words(2) == ["init", "plan", "apply", "init", "plan", "apply"]
    assert stacks_of(context.commands) == ["tooling"] * 3 + ["apps"] * 3


def test_apply_without_a_terminal_asks_for_yes(terraform_tree, monkeypatch):
    saved(terraform_tree, "aws", "stage", "infra")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    context = Recorder()
    with pytest.raises(Exit, match="run again with --yes"):
        tf.apply(context, stack=["aws/infra"], env="stage")
    assert context.words(2) == ["show"], "it showed the plan and applied nothing"


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("aws/backend/prod.hcl", r"aws/backend/prod.hcl is missing. Fix: copy prod.hcl.example"),
        ("aws/common.tfvars", r"aws/common.tfvars is missing. Fix: copy common.tfvars.example"),
        ("aws/stacks/apps/prod.tfvars", r"apps/prod.tfvars is missing. Fix: copy prod.tfvars"),
    ],
)
def test_preflight_names_the_missing_file_before_any_stack_runs(terraform_tree, missing, message):
    (terraform_tree / missing).unlink()
    context = Recorder()
    with pytest.raises(Exit, match=message):
        tf.plan(context, stack=["aws"], env="prod")
    assert context.commands == [], "nothing ran: infra is not planned without apps"


def test_digitalocean_needs_its_token_and_spaces_keys(terraform_tree, monkeypatch):
    monkeypatch.delenv("DIGITALOCEAN_TOKEN")
    with pytest.raises(Exit, match="DIGITALOCEAN_TOKEN is not set"):
        tf.plan(Recorder(), stack=["do"], env="stage")
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "test-token")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(Exit, match=r"AWS_ACCESS_KEY_ID is not set\. Fix: export DIGITALOCEAN"):
        tf.plan(Recorder(), stack=["do"], env="stage")


# --- plan comments and drift issues ------------------------------------------------------------


def test_comment_needs_the_saved_plan_of_this_commit(terraform_tree):
    with pytest.raises(Exit, match=r"no saved plan of 0123456789ab for aws/infra \(stage\)"):
        tf.comment(Recorder(), stack="aws/infra", env="stage", pr=7)
    with pytest.raises(Exit, match="--stack must name one stack"):
        tf.comment(Recorder(), stack="aws", env="stage", pr=7)


@pytest.mark.parametrize("existing", ["", "555\n"])
def test_comment_creates_or_updates_the_stacks_own_comment(terraform_tree, existing):
    saved(terraform_tree, "aws", "stage", "infra")
    context = Recorder(
        (r"show -json", Result(EMPTY_PLAN)),
        (r"show -no-color", Result("No changes. Your infrastructure matches the configuration.")),
        (r"gh api --paginate", Result(existing)),
    )
    tf.comment(context, stack="aws/infra", env="stage", pr=7)
    gh = [command.split(" ", 1)[1] for command in context.commands if " show " not in command]
    assert gh[0].startswith("api --paginate 'repos/{owner}/{repo}/issues/7/comments' --jq")
    assert '"<!-- Terraform plan: aws/infra (stage) -->"' in gh[0], "found by its own marker"
    if existing:
        assert gh[1].startswith("api --method PATCH 'repos/{owner}/{repo}/issues/comments/555'")
    else:
        assert gh[1].startswith("pr comment 7 --body-file ")
    assert len(gh) == 2


def drift_context(exited: int, issue: str) -> Recorder:
    return Recorder(
        (r" plan ", Result(exited=exited)),
        (r"show -json", Result(json.dumps({"resource_changes": [CHANGED], "resource_drift": []}))),
        (r"gh issue list", Result(issue)),
    )


CHANGED = {"address": "aws_s3_bucket.logs", "change": {"actions": ["update"]}}


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
    tf.drift(context, stack="aws/tooling", env="prod")
    plan = next(command for command in context.commands if " plan " in command)
    assert "-detailed-exitcode" in plan and "-lock=false" in plan
    gh = [c.split(" ", 1)[1] for c in context.commands if c.split()[0].endswith("/gh")]
    assert gh[0].startswith("issue list --state open")
    assert '"Terraform drift: aws/tooling (prod)"' in gh[0]
    assert len(gh) == 1 + len(expected)
    for command, start in zip(gh[1:], expected, strict=True):
        assert command.startswith(start), command
    if "issue create" in "".join(expected):
        assert gh[-1].endswith("--title 'Terraform drift: aws/tooling (prod)'")


def test_drift_fails_when_the_plan_fails(terraform_tree):
    with pytest.raises(Exit, match=r"terraform plan of aws/infra \(stage\) failed \(exit 1\)"):
        tf.drift(drift_context(1, ""), stack="aws/infra", env="stage")


def test_validate_offline_without_a_mirror_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("TF_PROVIDER_MIRROR", raising=False)
    with pytest.raises(Exit, match=r"TF_PROVIDER_MIRROR .* `terraform providers mirror`"):
        tf.validate(Recorder(), offline=True)


def test_bootstrap_plans_then_applies_with_local_state_after_a_yes(terraform_tree, monkeypatch):
    (terraform_tree / "aws" / "bootstrap" / "bootstrap.tfvars").unlink()
    with pytest.raises(Exit, match=r"aws/bootstrap/bootstrap.tfvars is missing\. Fix: copy"):
        tf.bootstrap(Recorder(), cloud="aws")
    shutil.copy(
        terraform_tree / "aws/bootstrap/bootstrap.tfvars.example",
        terraform_tree / "aws/bootstrap/bootstrap.tfvars",
    )
    monkeypatch.setattr(tf, "confirm", lambda question: True)
    context = Recorder()
    tf.bootstrap(context, cloud="aws")
    assert context.words(2) == ["init", "plan", "apply", "output"]
    assert all("-chdir=" + str(terraform_tree / "aws/bootstrap") in c for c in context.commands)
    assert "-backend-config" not in context.commands[0], "the bootstrap keeps its state locally"
    assert "-var-file=" + str(terraform_tree / "aws/common.tfvars") in context.commands[1]
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
        return sorted(doc["kind"] for doc in k8s.documents(tf.argocd_manifests(cloud, "stage")))

    before = kinds()
    assert "Application" not in before and "AppProject" in before
    overlay = tree / f"overlays/{cloud}/stage/kustomization.yaml"
    release = ImageRef("registry.example.com/todo", "a" * 40, "sha256:" + "b" * 64)
    overlay.write_text(set_image(overlay.read_text(), release))
    assert sorted([*before, "Application"]) == kinds()
