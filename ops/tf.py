"""Terraform for DigitalOcean and AWS: `invoke tf.stacks`, `tf.plan`, `tf.apply`, `tf.comment`,
`tf.drift`, `tf.bootstrap`, `tf.fmt`, `tf.validate`.

Each task runs terraform (and the GitHub CLI for comments and issues) itself; the workflows
terraform-plan.yml, terraform-apply.yml and drift.yml call these tasks. terraform/README.md
explains the stacks, their state, the var files each one reads, and the pipeline.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, astuple, dataclass
from fnmatch import fnmatch
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import k8s
from ops.k8s import RenderError, documents, render
from ops.tools import REPO_ROOT, confirm, require

TERRAFORM_DIR = REPO_ROOT / "terraform"
CLOUDS = ("do", "aws")
ENVIRONMENTS = ("stage", "prod")
# Apply order. `shared` is account-wide; the rest exist once per environment and each finds
# what the previous one made by name (`<project>-<env>`), not through remote state.
STACKS = ("shared", "infra", "tooling", "apps")
ENVIRONMENT_STACKS = STACKS[1:]
TERRAFORM_FIX = "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
# The configurations that need only hashicorp/aws: `tf.validate --offline` can init them from a
# provider mirror. The others need the registry (GitHub Actions runs them).
OFFLINE = ("aws/modules/*", "aws/stacks/shared", "aws/stacks/infra", "aws/bootstrap")
DO_CREDENTIALS = {
    "DIGITALOCEAN_TOKEN": "export an API token "
    "(https://docs.digitalocean.com/reference/api/create-personal-access-token/)",
    "AWS_ACCESS_KEY_ID": "export your Spaces access key and secret as AWS_ACCESS_KEY_ID / "
    "AWS_SECRET_ACCESS_KEY (the state backend reads them)",
}
GH_FIX = "install the GitHub CLI (https://cli.github.com); GitHub's runners have it"
MIRROR_FIX = (
    "set TF_PROVIDER_MIRROR to a folder made by `terraform providers mirror` that holds "
    "hashicorp/aws (terraform/README.md, 'Checks')"
)


@dataclass(frozen=True)
class Configuration:
    """A folder of .tf files under terraform/: a reusable module or a root stack."""

    name: str  # relative to terraform/, e.g. aws/stacks/infra

    @property
    def is_stack(self) -> bool:
        """A root module: a stack, or a cloud's bootstrap."""
        return self.name.split("/")[-2] == "stacks" or self.name.endswith("/bootstrap")

    @property
    def offline(self) -> bool:
        return any(fnmatch(self.name, pattern) for pattern in OFFLINE)


def configurations() -> list[Configuration]:
    """Every module and stack under terraform/, modules first."""
    names = {
        file.parent.relative_to(TERRAFORM_DIR).as_posix()
        for file in TERRAFORM_DIR.rglob("*.tf")
        if ".terraform" not in file.parts
    }
    return sorted(map(Configuration, names), key=lambda c: (c.is_stack, c.name))


def terraform_env(data_dir: Path | None = None) -> dict[str, str]:
    """terraform's environment: never prompt, and a CLI config file so it does not warn of none."""
    env = {**os.environ, "TF_INPUT": "0", "TF_IN_AUTOMATION": "1"}
    if not Path(env.get("TF_CLI_CONFIG_FILE") or Path.home() / ".terraformrc").is_file():
        env["TF_CLI_CONFIG_FILE"] = os.devnull
    if data_dir is not None:
        env["TF_DATA_DIR"] = str(data_dir)
    return env


# --- which stacks, in which order ---------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One stack of one environment (`shared` has one state per account: env "shared")."""

    cloud: str
    env: str
    stack: str

    @property
    def name(self) -> str:
        return f"{self.cloud}/{self.stack}"

    def __str__(self) -> str:
        return self.name if self.stack == "shared" else f"{self.name} ({self.env})"


def targets(stacks: list[str], env: str) -> list[Target]:
    """`aws/infra`, `aws/shared` or `aws` (its infra, tooling, apps) as targets, in apply order."""
    found = []
    for value in stacks:
        cloud, _, stack = value.partition("/")
        if cloud not in CLOUDS or (stack and stack not in STACKS):
            choices = "CLOUD or CLOUD/STACK with CLOUD in do, aws and STACK in " + ", ".join(STACKS)
            raise Exit(f"error: unknown stack {value!r}; use {choices}", code=2)
        for name in (stack,) if stack else ENVIRONMENT_STACKS:
            if name != "shared" and env not in ENVIRONMENTS:
                raise Exit(f"error: --env must be one of stage, prod for {value} (got {env!r})", 2)
            found.append(Target(cloud, "shared" if name == "shared" else env, name))
    return sorted(set(found), key=lambda t: (STACKS.index(t.stack), CLOUDS.index(t.cloud)))


def changed_files(base: str) -> list[str]:
    """Files that differ between `base` and HEAD (git)."""
    command = ["git", "-C", str(REPO_ROOT), "diff", "--name-only", base, "HEAD"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise Exit(f"error: git diff {base} HEAD failed: {result.stderr.strip()}", code=1)
    return result.stdout.split()


def module_sources(configuration: Path) -> set[Path]:
    """The local module folders a configuration calls, and theirs in turn."""
    found: set[Path] = set()
    for file in configuration.glob("*.tf"):
        for source in re.findall(r'source\s*=\s*"(\.\.?/[^"]+)"', file.read_text()):
            module = (configuration / source).resolve()
            if module not in found:
                found |= {module, *module_sources(module)}
    return found


def inputs(cloud: str, stack: str) -> list[Path]:
    """What a stack's plan reads: its folder and the modules it calls, its cloud's backend
    files and common.tfvars, and for apps the Argo CD objects it renders."""
    folder = stack_dir(cloud, stack).resolve()
    found = [folder, *module_sources(folder), TERRAFORM_DIR / cloud / "backend"]
    found += [TERRAFORM_DIR / cloud / f"common.tfvars{suffix}" for suffix in ("", ".example")]
    if stack == "apps":
        found += [REPO_ROOT / "kustomize" / "argocd" / part for part in (cloud, "base")]
    return [path.resolve() for path in found]


def affected(files: list[str]) -> set[tuple[str, str]]:
    """(cloud, stack) that the changed files touch, and every stack downstream of those."""
    paths = [(REPO_ROOT / file).resolve() for file in files]
    touched = [
        (cloud, stack)
        for cloud in CLOUDS
        for stack in STACKS
        if any(i == p or i in p.parents for p in paths for i in inputs(cloud, stack))
    ]
    return {(cloud, later) for cloud, stack in touched for later in STACKS[STACKS.index(stack) :]}


def select(stacks: list[str], env: str, changed_from: str) -> list[Target]:
    """The targets of --stack, narrowed by --changed-from to what changed and its downstream."""
    chosen = targets(stacks, env)
    if changed_from:
        touched = affected(changed_files(changed_from))
        chosen = [t for t in chosen if (t.cloud, t.stack) in touched]
    return chosen


# --- plan / apply ------------------------------------------------------------------------


def stack_dir(cloud: str, stack: str) -> Path:
    return TERRAFORM_DIR / cloud / "stacks" / stack


def data_dir(cloud: str, env: str, stack: str) -> Path:
    """A stack's .terraform folder for one environment (the backend key differs, not the code)."""
    return stack_dir(cloud, stack) / ".terraform" / ("shared" if stack == "shared" else env)


def state_key(cloud: str, env: str, stack: str) -> str:
    """Where each stack keeps its state in the backend bucket."""
    return f"{cloud}/shared.tfstate" if stack == "shared" else f"{cloud}/{env}/{stack}.tfstate"


def backend_file(cloud: str, env: str, stack: str) -> Path:
    """terraform/<cloud>/backend/<env>.hcl (shared.hcl for `shared`): bucket, region, endpoint."""
    return TERRAFORM_DIR / cloud / "backend" / f"{'shared' if stack == 'shared' else env}.hcl"


def backend_config(cloud: str, env: str, stack: str) -> list[str]:
    """The -backend-config values of a stack: its environment's backend file, then its key."""
    return [str(backend_file(cloud, env, stack)), f"key={state_key(cloud, env, stack)}"]


def var_files(cloud: str, env: str, stack: str) -> list[Path]:
    """The cloud's common.tfvars, then the stack's own file (a later file wins). A file is
    needed exactly where the layout has its .example."""
    own = stack_dir(cloud, stack) / ("shared.tfvars" if stack == "shared" else f"{env}.tfvars")
    candidates = (TERRAFORM_DIR / cloud / "common.tfvars", own)
    return [f for f in candidates if f.is_file() or f.with_suffix(".tfvars.example").is_file()]


def configured(cloud: str) -> bool:
    """A cloud is set up for the pipeline once its backend files are committed."""
    return all(backend_file(cloud, env, "infra").is_file() for env in ENVIRONMENTS)


def need(*files: Path) -> None:
    """Stop at the first missing settings file, saying which .example to copy."""
    for file in files:
        if not file.is_file():
            raise Exit(
                f"error: {file.relative_to(REPO_ROOT)} is missing. Fix: copy {file.name}.example "
                "next to it and fill it in (terraform/README.md, 'Settings').",
                code=1,
            )


def preflight(cloud: str, env: str, stack: str) -> None:
    """Stop at the first missing piece, saying how to fix it."""
    require("terraform", TERRAFORM_FIX)
    need(backend_file(cloud, env, stack), *var_files(cloud, env, stack))
    missing = [v for v in DO_CREDENTIALS if cloud == "do" and not os.environ.get(v)]
    if missing:
        raise Exit(f"error: {missing[0]} is not set. Fix: {DO_CREDENTIALS[missing[0]]}", code=1)


def source_commit() -> str:
    """HEAD's commit, with `-dirty` when terraform/ or kustomize/ has uncommitted changes (but
    for the provider lock files `terraform init` writes or extends)."""

    def git(*args: str) -> str:
        command = ["git", "-C", str(REPO_ROOT), *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603

    locks = ":(exclude,glob)**/.terraform.lock.hcl"
    dirty = git("status", "--porcelain", "--", "terraform", "kustomize", locks)
    return git("rev-parse", "HEAD") + ("-dirty" if dirty else "")


def saved_plan(target: Target, commit: str) -> Path:
    """Where tf.plan saves the plan of `target` at `commit`, and tf.apply looks for it."""
    return data_dir(target.cloud, target.env, target.stack) / "plans" / f"{commit}.tfplan"


def _terraform(c, cloud: str, env: str, stack: str, *args: str, **run):
    """terraform in a stack folder, with the environment's data dir."""
    return _run(c, stack_dir(cloud, stack), data_dir(cloud, env, stack), *args, **run)


def _run(c, folder: Path, data: Path | None, *args: str, **run):
    """terraform -chdir=folder, echoed on stderr, never prompting."""
    terraform = require("terraform", TERRAFORM_FIX)
    command = shlex.join([terraform, f"-chdir={folder}", *args])
    print(f"$ {command.replace(str(REPO_ROOT) + '/', '')}", file=sys.stderr, flush=True)
    return c.run(command, env=terraform_env(data), **{"pty": sys.stdout.isatty(), **run})


def plan_stack(
    c, cloud: str, env: str, stack: str, plan_file: Path, backend: list[str], *flags: str
):
    """init one stack against `backend` (its -backend-config values), then plan into plan_file
    with any extra plan `flags`; returns the plan's result."""
    init = ["init", "-input=false", "-reconfigure", *(f"-backend-config={b}" for b in backend)]
    _terraform(c, cloud, env, stack, *init)
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    plan = ["plan", "-input=false", f"-out={plan_file}", *flags]
    plan += [f"-var-file={file}" for file in var_files(cloud, env, stack)]
    if stack != "shared":
        plan.append(f"-var=environment={env}")
    if stack == "apps":
        plan.append(f"-var-file={_argocd_var_file(cloud, env, plan_file.parent)}")
    detailed = "-detailed-exitcode" in flags  # exit 2: there are changes
    return _terraform(c, cloud, env, stack, *plan, warn=detailed)


def _argocd_var_file(cloud: str, env: str, folder: Path) -> Path:
    """The rendered kustomize/argocd/<cloud>/<env> as a var file for the apps stack; without
    the Application while the overlay pins no release, so that Argo CD never syncs the
    template's placeholder image (ImagePullBackOff, a failed migrate hook, Degraded)."""
    from ops.release import image_entry  # ops.release imports this module

    try:
        docs = documents(render(f"argocd/{cloud}/{env}"))
    except RenderError as error:
        raise Exit(f"error: {error}", code=1) from error
    overlay = k8s.KUSTOMIZE_DIR / "overlays" / cloud / env / "kustomization.yaml"
    if not (pinned := image_entry(overlay.read_text())) or not pinned.is_release:
        docs = [doc for doc in docs if doc["kind"] != "Application"]
        print(
            f"  note: overlays/{cloud}/{env} pins no release yet ({pinned}): the AppProject "
            f"only. After `invoke deploy --env {env} --cloud {cloud}`, apply this stack again "
            "to create the Application.",
            flush=True,
        )
    path = folder / f"argocd-{cloud}-{env}.tfvars.json"
    path.write_text(json.dumps({"argocd_manifests_yaml": yaml.safe_dump_all(docs)}))
    return path


def plan_targets(c, chosen: list[Target], *flags: str) -> str:
    """Check every target's files, then plan each into its saved plan of this commit; returns
    the commit."""
    for target in chosen:  # all of them before the first plan
        preflight(target.cloud, target.env, target.stack)
    commit = source_commit()
    for target in chosen:
        print(f"\n=== {target} ===", flush=True)
        backend = backend_config(target.cloud, target.env, target.stack)
        plan_stack(c, *astuple(target), saved_plan(target, commit), backend, *flags)
    print(f"\nsaved as the plans of {commit[:12]}; `invoke tf.apply` with the same --stack")
    return commit


STACK_HELP = {
    "stack": "CLOUD/STACK (aws/infra, do/shared, ...) or CLOUD for its infra, tooling and apps; "
    "repeat it for several. They run in dependency order: shared, infra, tooling, apps",
    "env": "stage or prod (not needed for CLOUD/shared)",
    "changed-from": "only the stacks that files changed since this git ref touch, and the "
    "stacks downstream of them",
}


@task(
    iterable=["stack"],
    help={
        **STACK_HELP,
        "lock": "take the state lock (--no-lock for a read-only plan, as pull requests do)",
        "destroy": "plan the destruction of the stacks (tear-down; tf.apply then destroys)",
    },
)
def plan(c, stack, env="", changed_from="", lock=True, destroy=False):
    """terraform init + plan of each stack, saved as the plan of this commit for tf.apply."""
    flags = [*([] if lock else ["-lock=false"]), *(["-destroy"] if destroy else [])]
    plan_targets(c, select(stack, env, changed_from), *flags)


@task(
    iterable=["stack"],
    help={
        **STACK_HELP,
        "yes": "apply without asking (CI)",
        "plan": "plan each stack right before applying it (CI: a stack finds what its upstream "
        "made by name, so it is planned after that is applied)",
    },
)
def apply(c, stack, env="", changed_from="", yes=False, plan=False):
    """Apply the saved plans of this commit (made by tf.plan), stack by stack in order.

    Refuses when a stack has no plan of the checked-out commit, so what is applied is what a
    plan showed; Terraform itself refuses a saved plan whose state changed since.
    """
    chosen, commit = select(stack, env, changed_from), source_commit()
    missing = [t for t in chosen if not plan and not saved_plan(t, commit).is_file()]
    if commit.endswith("-dirty") or missing:
        again = shlex.join(["invoke", "tf.plan", *(f"--stack={s}" for s in stack), f"--env={env}"])
        why, fix = f"no saved plan of commit {commit[:12]} for {', '.join(map(str, missing))}", ""
        if commit.endswith("-dirty"):
            why, fix = "terraform/ or kustomize/ has uncommitted changes", "commit, then "
        raise Exit(
            f"error: tf.apply applies only a saved plan of the checked-out commit, and {why}. "
            f"Fix: {fix}run `{again}`, read the plan, then apply.",
            code=1,
        )
    for target in chosen:
        plan_file = saved_plan(target, plan_targets(c, [target]) if plan else commit)
        print(f"\n=== apply {target} ===", flush=True)
        if not yes:
            _terraform(c, *astuple(target), "show", str(plan_file))
            if not confirm(f"Apply this plan to {target}?"):
                raise Exit(f"tf.apply: {target} not applied (answer was not yes)", code=1)
        _terraform(c, *astuple(target), "apply", "-input=false", str(plan_file))
        plan_file.unlink(missing_ok=True)  # a plan applies once; a stale one must not linger


@task(
    help={
        "changed-from": STACK_HELP["changed-from"],
        "json": "print JSON for GitHub Actions: targets, and the clouds with shared or env stacks",
    }
)
def stacks(c, changed_from="", json_=False):
    """Print the stacks a change touches (all without --changed-from) in the order they apply:
    shared, then stage's, then prod's. Only clouds whose backend files exist take part."""
    clouds = [cloud for cloud in CLOUDS if configured(cloud)]
    for cloud in sorted(set(CLOUDS) - set(clouds)):
        print(f"{cloud}: left out, no terraform/{cloud}/backend/*.hcl yet", file=sys.stderr)
    chosen = select([f"{cloud}/shared" for cloud in clouds], "", changed_from)
    for env in ENVIRONMENTS:
        chosen += select(clouds, env, changed_from)
    if not json_:
        print("\n".join(map(str, chosen)) or "no stack is touched")
        return
    found = [{"name": t.name, **asdict(t)} for t in chosen]
    shared = sorted({t.cloud for t in chosen if t.stack == "shared"})
    environments = sorted({t.cloud for t in chosen if t.stack != "shared"})
    print(json.dumps({"targets": found, "shared": shared, "environments": environments}))


# --- plan comments and drift issues ------------------------------------------------------

# resource_changes[].change.actions of `terraform show -json` (Terraform's JSON output format)
ACTIONS = {
    ("create",): "add",
    ("update",): "change",
    ("delete",): "destroy",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
}
PLAN_TEXT_LIMIT = 60_000  # GitHub refuses a comment or issue body over 65,536 characters
DRIFT_LABEL = "terraform-drift"


def plan_changes(plan_json: dict) -> dict[str, list[str]]:
    """add / change / destroy / replace -> the addresses of the resources, in plan order."""
    found: dict[str, list[str]] = {kind: [] for kind in ("add", "change", "destroy", "replace")}
    for resource in plan_json.get("resource_changes", []):
        kind = ACTIONS.get(tuple(resource["change"]["actions"]))
        if kind:
            found[kind].append(resource["address"])
    return found


def report(title: str, plan_json: dict, plan_text: str, footer: str) -> str:
    """A markdown report of a plan: a marker line to find it by, destroys first, the summary
    as Terraform counts it (a replacement is one add and one destroy), the plan collapsed."""
    changes = plan_changes(plan_json)
    adds, destroys = (len(changes[k]) + len(changes["replace"]) for k in ("add", "destroy"))
    lines = [f"<!-- {title} -->", f"### {title}", ""]
    if destroys:
        lines += ["> [!CAUTION]", f"> **This plan destroys {destroys}:**"]
        lines += [f"> - `{address}`" for address in changes["destroy"]]
        lines += [f"> - `{address}` (replaced)" for address in changes["replace"]]
        lines.append("")
    drifted = [r["address"] for r in plan_json.get("resource_drift", [])]
    if drifted:
        lines += [f"Changed outside Terraform: {', '.join(f'`{a}`' for a in drifted)}", ""]
    if adds or destroys or changes["change"]:
        changed = len(changes["change"])
        lines.append(f"**{adds} to add, {changed} to change, {destroys} to destroy.**")
    else:
        lines.append("**No changes.** The infrastructure matches the configuration.")
    text = plan_text.strip()
    if len(text) > PLAN_TEXT_LIMIT:
        text = text[:PLAN_TEXT_LIMIT] + "\n... (cut here: the whole plan is in the job's log)"
    lines += ["", "<details><summary>terraform plan</summary>", "", "```", text, "```"]
    return "\n".join([*lines, "", "</details>", "", footer, ""])


def show(c, target: Target, plan_file: Path) -> tuple[dict, str]:
    """The saved plan as JSON (`terraform show -json`) and as text."""
    run = {"hide": "out", "pty": False}
    as_json = _terraform(c, *astuple(target), "show", "-json", str(plan_file), **run).stdout
    text = _terraform(c, *astuple(target), "show", "-no-color", str(plan_file), **run).stdout
    return json.loads(as_json), text


def one(stack: str, env: str) -> Target:
    chosen = targets([stack], env)
    if len(chosen) != 1:
        raise Exit(f"error: --stack must name one stack, CLOUD/STACK (got {stack!r})", code=2)
    return chosen[0]


def gh(c, command: str, *args: str, body: str = "") -> str:
    """The GitHub CLI (GH_TOKEN and GH_REPO come from the workflow): `command` split like a
    shell line, then `args` as they are, then the body as a --body-file; returns its output."""
    with tempfile.NamedTemporaryFile("w", suffix=".md") as file:
        file.write(body)
        file.flush()
        words = [require("gh", GH_FIX), *shlex.split(command), *args]
        words = [file.name if word == "BODY" else word for word in words]
        return c.run(shlex.join(words), hide=True, pty=False).stdout


@task(
    help={
        "stack": "one stack, CLOUD/STACK",
        "env": STACK_HELP["env"],
        "pr": "the pull request whose comment for this stack is created or updated (needs gh); "
        "without it the comment is printed",
    }
)
def comment(c, stack, env="", pr=0):
    """The plan comment of a stack, from its saved plan of this commit (terraform show -json)."""
    target, commit = one(stack, env), source_commit()
    plan_file = saved_plan(target, commit)
    if not plan_file.is_file():
        raise Exit(
            f"error: no saved plan of {commit[:12]} for {target}. Fix: run "
            f"`invoke tf.plan --stack {target.name} --env {env}` first",
            code=1,
        )
    footer = f"Planned at {commit[:12]}; the next push updates this comment."
    body = report(f"Terraform plan: {target}", *show(c, target, plan_file), footer)
    if not pr:
        print(body)
        return
    marker = json.dumps(body.splitlines()[0])
    jq = f".[] | select(.body | startswith({marker})) | .id"
    mine = gh(c, f"api --paginate repos/{{owner}}/{{repo}}/issues/{pr}/comments --jq", jq).split()
    if mine:
        gh(
            c,
            f"api --method PATCH repos/{{owner}}/{{repo}}/issues/comments/{mine[0]}",
            "-F",
            "body=@BODY",
            body=body,
        )
    else:
        gh(c, f"pr comment {pr} --body-file BODY", body=body)


@task(help={"stack": "one stack, CLOUD/STACK", "env": STACK_HELP["env"]})
def drift(c, stack, env=""):
    """`terraform plan -detailed-exitcode` of one stack: open or update its drift issue when the
    plan is not empty, close it when the plan is clean again (needs gh)."""
    target = one(stack, env)
    preflight(*astuple(target))
    plan_file = saved_plan(target, "drift")
    backend = backend_config(*astuple(target))
    flags = ("-lock=false", "-detailed-exitcode")
    exited = plan_stack(c, *astuple(target), plan_file, backend, *flags).exited
    if exited not in (0, 2):
        raise Exit(f"tf.drift: terraform plan of {target} failed (exit {exited})", code=1)
    title = f"Terraform drift: {target}"
    jq = f".[] | select(.title == {json.dumps(title)}) | .number"
    issue = gh(
        c,
        f"issue list --state open --limit 200 --json number,title --label {DRIFT_LABEL}",
        "--jq",
        jq,
    ).split()
    if exited == 0:
        print(f"{target}: no drift")
        if issue:
            gh(c, f"issue close {issue[0]} --comment", "The plan is clean again: no drift.")
        return
    footer = "Found by the drift schedule (drift.yml); closes itself once the plan is clean."
    body = report(title, *show(c, target, plan_file), footer)
    if issue:
        gh(c, f"issue edit {issue[0]} --body-file BODY", body=body)
    else:
        gh(
            c,
            f"label create {DRIFT_LABEL} --force --color d93f0b --description",
            "Terraform found changes made outside the pipeline",
        )
        gh(c, f"issue create --label {DRIFT_LABEL} --body-file BODY --title", title, body=body)
    print(f"{target}: drift reported in an issue")


# --- bootstrap ---------------------------------------------------------------------------


@task(help={"cloud": "do or aws", "destroy": "tear it down: the last step, after every stack"})
def bootstrap(c, cloud, destroy=False):
    """Once per account: the state bucket (a Space on DigitalOcean) and the credentials the
    workflows use (AWS: GitHub OIDC roles; DigitalOcean: Spaces keys), from
    terraform/<cloud>/bootstrap with local state. Shows the plan and asks first."""
    if cloud not in CLOUDS:
        raise Exit(f"error: --cloud must be one of {', '.join(CLOUDS)} (got {cloud!r})", code=2)
    folder = TERRAFORM_DIR / cloud / "bootstrap"
    files = [TERRAFORM_DIR / cloud / "common.tfvars", folder / "bootstrap.tfvars"]
    need(*files)
    plan_file = folder / ".terraform" / "bootstrap.tfplan"
    _run(c, folder, None, "init", "-input=false")
    flags = [f"-var-file={file}" for file in files] + (["-destroy"] if destroy else [])
    _run(c, folder, None, "plan", "-input=false", f"-out={plan_file}", *flags)
    if not confirm(f"{'Destroy' if destroy else 'Create'} the {cloud} bootstrap as planned?"):
        raise Exit("tf.bootstrap: nothing changed (answer was not yes)", code=1)
    _run(c, folder, None, "apply", "-input=false", str(plan_file))
    if not destroy:  # the values for backend/*.hcl and the GitHub environments
        _run(c, folder, None, "output")


# --- fmt / validate ----------------------------------------------------------------------


@task(help={"check": "only report the files that need formatting, and fail if any do"})
def fmt(c, check=False):
    """Format every .tf, .tfvars and .tftest.hcl file under terraform/ (terraform fmt)."""
    terraform = require("terraform", TERRAFORM_FIX)
    flags = "-check -diff " if check else ""
    c.run(f"{terraform} fmt {flags}-recursive {TERRAFORM_DIR}", env=terraform_env())


def provider_mirror() -> Path | None:
    """$TF_PROVIDER_MIRROR, when it holds hashicorp/aws."""
    mirror = os.environ.get("TF_PROVIDER_MIRROR")
    if mirror and (Path(mirror) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        return Path(mirror)
    return None


def _check(name: str, tree: Path, data_root: Path, mirror: Path | None) -> list[tuple[str, str]]:
    """(step, outcome) of init, validate and, where it has tests, terraform test."""
    terraform = require("terraform", TERRAFORM_FIX)
    env = terraform_env(data_root / name.replace("/", "-"))
    init = ["init", "-backend=false", "-input=false"]
    init += [f"-plugin-dir={mirror}"] if mirror else []
    tested = any((tree / name / "tests").glob("*.tftest.hcl"))
    steps = [init, ["validate"], *([["test"]] if tested else [])]
    report = []
    for args in steps:
        result = subprocess.run(  # noqa: S603 - terraform, with arguments built here
            [terraform, *args, "-no-color"],
            cwd=tree / name,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return [*report, (args[0], f"FAILED\n{result.stdout}{result.stderr}")]
        report.append((args[0], "ok"))
    return report


def validation_report(names: list[str], mirror: Path | None) -> dict[str, list[tuple[str, str]]]:
    """configuration -> (step, outcome) of its checks, from the mirror or else the registry.

    Each runs in a scratch copy of terraform/ (init writes lock files next to the code), with
    its own data dir, several at a time.
    """
    with tempfile.TemporaryDirectory(prefix="tf-validate-") as tmp:
        tree = Path(tmp) / "terraform"
        skip = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfvars", "*.tfstate*")
        shutil.copytree(TERRAFORM_DIR, tree, ignore=skip)
        with ThreadPoolExecutor(max_workers=4) as pool:
            reports = pool.map(lambda name: _check(name, tree, Path(tmp) / "data", mirror), names)
            return dict(zip(names, reports, strict=True))


@task(help={"offline": "init from the provider mirror in $TF_PROVIDER_MIRROR: aws-only code"})
def validate(c, offline=False):
    """terraform fmt -check, then init, validate and terraform test of every configuration."""
    fmt(c, check=True)
    mirror = provider_mirror() if offline else None
    if offline and mirror is None:
        raise Exit(f"error: no provider mirror. Fix: {MIRROR_FIX}", code=1)
    everything = configurations()
    names = [config.name for config in everything if config.offline or not offline]
    failed = False
    for name, report in validation_report(names, mirror).items():
        for step, outcome in report:
            print(f"{step:9} {name:36} {outcome}", flush=True)
            failed |= outcome != "ok"
    for config in everything:
        if config.name not in names:
            print(f"{'-':9} {config.name:36} not run offline: needs more than hashicorp/aws")
    if failed:
        raise Exit("tf.validate: failed", code=1)
    print("tf.validate: ok")


ns = Collection("tf")
for each in (stacks, plan, apply, comment, drift, bootstrap):
    ns.add_task(each)
ns.add_task(fmt)
ns.add_task(validate)
