"""Terraform for DigitalOcean and AWS: `invoke tf.stacks`, `tf.plan`, `tf.apply`, `tf.comment`,
`tf.drift`, `tf.bootstrap`, `tf.fmt`, `tf.validate`.

Each task runs terraform (and the GitHub CLI for comments and issues); the workflows
terraform-plan.yml, terraform-apply.yml and drift.yml call them. terraform/README.md explains
the stacks, their state, the var files each one reads, and the pipeline.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from fnmatch import fnmatch
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import k8s
from ops.tools import REPO_ROOT, VERSIONS, confirm, download, git, require

TERRAFORM_DIR = REPO_ROOT / "terraform"
CLOUDS = ("do", "aws")
ENVIRONMENTS = ("stage", "prod")
# Apply order. `shared` is account-wide; the rest exist once per environment and each finds
# what the previous one made by name (`<project>-<env>`), not through remote state.
STACKS = ("shared", "infra", "tooling", "apps")
# DigitalOcean stage on App Platform instead of tooling + apps: planned only when named
# (`--stack do/app-platform`), never as another's downstream.
ALL_STACKS = (*STACKS, "app-platform")
TERRAFORM_FIX = "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
MIRROR_FIX = (
    "set TF_PROVIDER_MIRROR to a folder made by `terraform providers mirror` that holds "
    "hashicorp/aws (terraform/README.md, 'Checks')"
)
DO_CREDENTIALS = {
    "DIGITALOCEAN_TOKEN": "export an API token "
    "(https://docs.digitalocean.com/reference/api/create-personal-access-token/)",
    "AWS_ACCESS_KEY_ID": "export your Spaces access key and secret as AWS_ACCESS_KEY_ID / "
    "AWS_SECRET_ACCESS_KEY (the state backend reads them)",
}
# The configurations that need only hashicorp/aws: `tf.validate --offline` can init them from a
# provider mirror. The others need the registry (GitHub Actions runs them).
OFFLINE = ("aws/modules/*", "aws/stacks/shared", "aws/stacks/infra", "aws/bootstrap")
PLAN_TEXT_LIMIT = 60_000  # GitHub refuses a comment or issue body over 65,536 characters


def terraform(c, folder: Path, *args: str, data_dir: Path | None = None, **run):
    """`terraform -chdir=FOLDER ARGS`, echoed on stderr, never prompting; TF_DATA_DIR gives each
    environment of a stack its own .terraform (the backend key differs, not the code)."""
    command = shlex.join([require("terraform", TERRAFORM_FIX), f"-chdir={folder}", *args])
    print(f"$ {command.replace(f'{REPO_ROOT}/', '')}", file=sys.stderr, flush=True)
    env = {"TF_INPUT": "0", "TF_IN_AUTOMATION": "1"} | (
        {"TF_DATA_DIR": str(data_dir)} if data_dir else {}
    )
    return c.run(command, env=env, **{"pty": sys.stdout.isatty(), "in_stream": False, **run})


def need(*files: Path) -> None:
    """Stop at the first missing settings file, saying which .example to copy."""
    for file in (file for file in files if not file.is_file()):
        raise Exit(
            f"error: {file.relative_to(REPO_ROOT)} is missing. Fix: copy {file.name}.example "
            "next to it and fill it in (terraform/README.md, 'Settings').",
            code=1,
        )


@dataclass(frozen=True)
class Target:
    """One stack of one environment; `shared` has one state per account (env "shared"), so
    its files are the `shared.*` ones where the others have `stage.*` or `prod.*`."""

    cloud: str
    env: str
    stack: str

    name = property(lambda self: f"{self.cloud}/{self.stack}")
    folder = property(lambda self: TERRAFORM_DIR / self.cloud / "stacks" / self.stack)
    data_dir = property(lambda self: self.folder / ".terraform" / self.env)
    backend_file = property(lambda self: TERRAFORM_DIR / self.cloud / "backend" / f"{self.env}.hcl")

    def __str__(self) -> str:
        return self.name if self.stack == "shared" else f"{self.name} ({self.env})"

    def var_files(self) -> list[Path]:
        """The cloud's common.tfvars, then the stack's own (a later file wins); a file is
        needed exactly where the layout has its .example."""
        files = (TERRAFORM_DIR / self.cloud / "common.tfvars", self.folder / f"{self.env}.tfvars")
        return [f for f in files if f.is_file() or f.with_suffix(".tfvars.example").is_file()]

    def plan_file(self, commit: str) -> Path:
        """Where tf.plan saves the plan of `commit`, and tf.apply looks for it."""
        return self.data_dir / "plans" / f"{commit}.tfplan"

    def terraform(self, c, *args: str, **run):
        return terraform(c, self.folder, *args, data_dir=self.data_dir, **run)


# --- which stacks, in which order ---------------------------------------------------------


def targets(stacks: list[str], env: str) -> list[Target]:
    """`aws/infra`, `aws/shared` or `aws` (its infra, tooling, apps) as targets, in apply order."""
    found = set()
    for value in stacks:
        cloud, _, stack = value.partition("/")
        # A stack of one cloud only (do/app-platform) has no folder in the other.
        known = stack in ("", *ALL_STACKS) and (TERRAFORM_DIR / cloud / "stacks" / stack).is_dir()
        if cloud not in CLOUDS or not known:
            choices = ", ".join(ALL_STACKS)
            raise Exit(f"error: unknown stack {value!r}; use CLOUD or CLOUD/STACK ({choices})", 2)
        for name in [stack] if stack else STACKS[1:]:
            if name != "shared" and env not in ENVIRONMENTS:
                raise Exit(f"error: --env must be one of stage, prod for {value} (got {env!r})", 2)
            found.add(Target(cloud, "shared" if name == "shared" else env, name))
    return sorted(found, key=lambda t: (ALL_STACKS.index(t.stack), CLOUDS.index(t.cloud)))


def module_sources(folder: Path) -> set[Path]:
    """The local module folders a configuration calls, and theirs in turn."""
    found: set[Path] = set()
    for file in folder.glob("*.tf"):
        for source in re.findall(r'source\s*=\s*"(\.\.?/[^"]+)"', file.read_text()):
            if (module := (folder / source).resolve()) not in found:
                found |= {module, *module_sources(module)}
    return found


def affected(files: list[str]) -> set[tuple[str, str]]:
    """(cloud, stack) whose inputs the changed files touch, and every stack downstream: a stack
    reads its folder and the modules it calls, its cloud's backend/ and common.tfvars(.example),
    and apps the Argo CD objects it renders."""
    # common.tfvars.example is an input too: a prefix of the path, as every input is.
    paths = [(REPO_ROOT / file.removesuffix(".example")).resolve() for file in files]
    touched = set()
    for cloud, stack in ((cloud, stack) for cloud in CLOUDS for stack in STACKS):
        folder, top = (TERRAFORM_DIR / cloud / "stacks" / stack).resolve(), TERRAFORM_DIR / cloud
        inputs = [folder, *module_sources(folder), top / "backend", top / "common.tfvars"]
        if stack == "apps":
            inputs += [REPO_ROOT / "kustomize" / "argocd" / part for part in (cloud, "base")]
        if any(path.is_relative_to(i.resolve()) for path in paths for i in inputs):
            touched |= {(cloud, later) for later in STACKS[STACKS.index(stack) :]}
    return touched


def select(stacks: list[str], env: str, changed_from: str) -> list[Target]:
    """The targets of --stack, narrowed by --changed-from to what changed and its downstream."""
    chosen = targets(stacks, env)
    if changed_from:
        touched = affected(git("diff", "--name-only", changed_from, "HEAD").split())
        chosen = [t for t in chosen if (t.cloud, t.stack) in touched]
    return chosen


# --- plan / apply ------------------------------------------------------------------------


def source_commit() -> str:
    """HEAD's commit, with `-dirty` when terraform/ or kustomize/ has uncommitted changes (but
    for the provider lock files `terraform init` writes or extends)."""
    locks = ":(exclude,glob)**/.terraform.lock.hcl"
    dirty = git("status", "--porcelain", "--", "terraform", "kustomize", locks)
    return git("rev-parse", "HEAD") + ("-dirty" if dirty else "")


def plan_all(c, chosen: list[Target], commit: str, *flags: str) -> list:
    """Check every target's settings before the first plan, then init each against its state
    and plan it into its saved plan of `commit`; returns the plans' results."""
    for target in chosen:
        need(target.backend_file, *target.var_files())
        for variable in ("DIGITALOCEAN_TOKEN", "AWS_ACCESS_KEY_ID") * (target.cloud == "do"):
            if not os.environ.get(variable):
                raise Exit(
                    f"error: {variable} is not set. Fix: export DIGITALOCEAN_TOKEN (an API token) "
                    "and your Spaces keys as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
                    code=1,
                )
    return [plan_one(c, target, target.plan_file(commit), *flags) for target in chosen]


def plan_one(c, target: Target, plan_file: Path, *flags: str):
    """What invoke passes besides the settings files goes in a var file next to the plan."""
    print(f"\n=== {target} ===", flush=True)
    shared = target.stack == "shared"
    key = f"{target.cloud}/{'shared' if shared else f'{target.env}/{target.stack}'}.tfstate"
    backend = [f"-backend-config={target.backend_file}", f"-backend-config=key={key}"]
    target.terraform(c, "init", "-reconfigure", *backend)
    passed = {} if shared else {"environment": target.env}
    if target.stack == "tooling":  # the pinned Argo CD install manifest (HA in prod)
        pinned = VERSIONS["manifests"]["argo-cd-ha" if target.env == "prod" else "argo-cd"]
        passed["argocd_install_yaml"] = download(pinned["url"], pinned["sha256"])
    if target.stack == "apps":
        passed["argocd_manifests_yaml"] = argocd_manifests(target.cloud, target.env)
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    (var_file := plan_file.with_suffix(".tfvars.json")).write_text(json.dumps(passed))
    var_files = [f"-var-file={file}" for file in (*target.var_files(), var_file)]
    # -detailed-exitcode exits 2 for a plan with changes: the caller decides.
    detailed = "-detailed-exitcode" in flags
    return target.terraform(c, "plan", f"-out={plan_file}", *flags, *var_files, warn=detailed)


def argocd_manifests(cloud: str, env: str) -> str:
    """kustomize/argocd/<cloud>/<env> rendered; without the Application while the overlay pins
    no release, so that Argo CD never syncs the template's placeholder image (ImagePullBackOff,
    a failed migrate hook, Degraded)."""
    from ops.release import image_entry  # ops.release imports this module

    docs = k8s.documents(k8s.rendered(f"argocd/{cloud}/{env}"))
    overlay = k8s.KUSTOMIZE_DIR / "overlays" / cloud / env / "kustomization.yaml"
    if not (pinned := image_entry(overlay.read_text())) or not pinned.is_release:
        docs = [doc for doc in docs if doc["kind"] != "Application"]
        print(
            f"  note: overlays/{cloud}/{env} pins no release yet ({pinned}): the AppProject "
            f"only. After `invoke deploy --env {env} --cloud {cloud}`, apply this stack again "
            "to create the Application.",
            flush=True,
        )
    return yaml.safe_dump_all(docs)


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
    flags = ["-lock=false"] * (not lock) + ["-destroy"] * destroy
    plan_all(c, select(stack, env, changed_from), commit := source_commit(), *flags)
    print(f"\nsaved as the plans of {commit[:12]}; `invoke tf.apply` with the same --stack")


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
    missing = [str(t) for t in chosen if not plan and not t.plan_file(commit).is_file()]
    if missing or commit.endswith("-dirty"):
        again = shlex.join(["invoke", "tf.plan", *(f"--stack={s}" for s in stack), f"--env={env}"])
        raise Exit(
            "error: tf.apply applies only a saved plan of the checked-out commit, and "
            + (
                "terraform/ or kustomize/ has uncommitted changes. Fix: commit, then "
                if commit.endswith("-dirty")
                else f"there is none of {commit[:12]} for {', '.join(missing)}. Fix: "
            )
            + f"run `{again}`, read the plan, then apply.",
            code=1,
        )
    for target in chosen:
        if plan:
            plan_all(c, [target], commit)
        plan_file = target.plan_file(commit)
        print(f"\n=== apply {target} ===", flush=True)
        if not yes:
            target.terraform(c, "show", str(plan_file))
            if not confirm(f"Apply this plan to {target}?"):
                raise Exit(f"tf.apply: {target} not applied (answer was not yes)", code=1)
        target.terraform(c, "apply", str(plan_file))
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
    clouds = []
    for cloud in CLOUDS:
        if all(Target(cloud, env, "infra").backend_file.is_file() for env in ENVIRONMENTS):
            clouds.append(cloud)
        else:
            print(f"{cloud}: left out, no terraform/{cloud}/backend/*.hcl yet", file=sys.stderr)
    chosen = select([f"{cloud}/shared" for cloud in clouds], "", changed_from)
    for env in ENVIRONMENTS:
        chosen += select(clouds, env, changed_from)
    if not json_:
        print("\n".join(map(str, chosen)) or "no stack is touched")
        return
    shared = sorted({t.cloud for t in chosen if t.stack == "shared"})
    environments = sorted({t.cloud for t in chosen if t.stack != "shared"})
    found = [{"name": t.name, **asdict(t)} for t in chosen]
    print(json.dumps({"targets": found, "shared": shared, "environments": environments}))


# --- plan comments and drift issues ------------------------------------------------------


def report(c, target: Target, plan_file: Path, title: str, footer: str) -> Path:
    """A markdown report of a saved plan, written next to it: a marker line to find it by, what
    it destroys first (`terraform show -json`), terraform's own summary, the plan collapsed."""

    def show(*args: str) -> str:
        return target.terraform(c, "show", *args, str(plan_file), hide="out", pty=False).stdout

    plan_json, text = json.loads(show("-json")), show("-no-color").strip()
    # A replacement is two actions, delete and create, in either order.
    destroyed = [
        f"> - `{change['address']}`" + " (replaced)" * ("create" in change["change"]["actions"])
        for change in plan_json.get("resource_changes", [])
        if "delete" in change["change"]["actions"]
    ]
    lines = [f"<!-- {title} -->", f"### {title}", ""]
    if destroyed:
        lines += ["> [!CAUTION]", f"> **This plan destroys {len(destroyed)}:**", *destroyed, ""]
    if drifted := [f"`{r['address']}`" for r in plan_json.get("resource_drift", [])]:
        lines += [f"Changed outside Terraform: {', '.join(drifted)}", ""]
    lines += [f"**{line}**" for line in re.findall(r"^(?:Plan: |No changes\.).*$", text, re.M)]
    if len(text) > PLAN_TEXT_LIMIT:
        text = text[:PLAN_TEXT_LIMIT] + "\n... (cut here: the whole plan is in the job's log)"
    lines += ["", "<details><summary>terraform plan</summary>", "", "```", text, "```", ""]
    body = plan_file.with_suffix(".md")
    body.write_text("\n".join([*lines, "</details>", "", footer, ""]))
    return body


def one(stack: str, env: str) -> Target:
    if len(chosen := targets([stack], env)) != 1:
        raise Exit(f"error: --stack must name one stack, CLOUD/STACK (got {stack!r})", code=2)
    return chosen[0]


def gh(c, *args: str) -> str:
    """The GitHub CLI's output (GH_TOKEN and GH_REPO come from the workflow)."""
    fix = "install the GitHub CLI (https://cli.github.com); GitHub's runners have it"
    return c.run(shlex.join([require("gh", fix), *args]), hide=True, pty=False).stdout


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
    if not (plan_file := target.plan_file(commit)).is_file():
        raise Exit(
            f"error: no saved plan of {commit[:12]} for {target}. Fix: run "
            f"`invoke tf.plan --stack {target.name} --env {env}` first",
            code=1,
        )
    title = f"Terraform plan: {target}"
    footer = f"Planned at {commit[:12]}; the next push updates this comment."
    body = report(c, target, plan_file, title, footer)
    if not pr:
        print(body.read_text())
        return
    mine = f".[] | select(.body | startswith({json.dumps(f'<!-- {title} -->')})) | .id"
    comments = f"repos/{{owner}}/{{repo}}/issues/{pr}/comments"
    if found := gh(c, "api", "--paginate", comments, "--jq", mine).split():
        edit = f"repos/{{owner}}/{{repo}}/issues/comments/{found[0]}"
        gh(c, "api", "--method", "PATCH", edit, "-F", f"body=@{body}")
    else:
        gh(c, "pr", "comment", str(pr), "--body-file", str(body))


@task(help={"stack": "one stack, CLOUD/STACK", "env": STACK_HELP["env"]})
def drift(c, stack, env=""):
    """`terraform plan -detailed-exitcode` of one stack: open or update its drift issue when the
    plan is not empty, close it when the plan is clean again (needs gh)."""
    target, label = one(stack, env), "terraform-drift"
    (result,) = plan_all(c, [target], "drift", "-lock=false", "-detailed-exitcode")
    exited, plan_file = result.exited, target.plan_file("drift")
    if exited not in (0, 2):
        raise Exit(f"tf.drift: terraform plan of {target} failed (exit {exited})", code=1)
    title = f"Terraform drift: {target}"
    mine = f".[] | select(.title == {json.dumps(title)}) | .number"
    listed = ["issue", "list", "--state", "open", "--label", label, "--json", "number,title"]
    issue = gh(c, *listed, "--jq", mine).split()
    if exited == 0:
        print(f"{target}: no drift")
        if issue:
            gh(c, "issue", "close", issue[0], "--comment", "The plan is clean again: no drift.")
        return
    footer = "Found by the drift schedule (drift.yml); closes itself once the plan is clean."
    body = str(report(c, target, plan_file, title, footer))
    if issue:
        gh(c, "issue", "edit", issue[0], "--body-file", body)
    else:
        why = "Terraform found changes made outside the pipeline"
        gh(c, "label", "create", label, "--force", "--color", "d93f0b", "--description", why)
        gh(c, "issue", "create", "--label", label, "--body-file", body, "--title", title)
    print(f"{target}: drift reported in an issue")


# --- bootstrap, fmt, validate ------------------------------------------------------------


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
    terraform(c, folder, "init")
    flags = [f"-var-file={file}" for file in files] + ["-destroy"] * destroy
    terraform(c, folder, "plan", f"-out={plan_file}", *flags)
    if not confirm(f"{'Destroy' if destroy else 'Create'} the {cloud} bootstrap as planned?"):
        raise Exit("tf.bootstrap: nothing changed (answer was not yes)", code=1)
    terraform(c, folder, "apply", str(plan_file))
    if not destroy:  # the values for backend/*.hcl and the GitHub environments
        terraform(c, folder, "output")


@task(help={"check": "only report the files that need formatting, and fail if any do"})
def fmt(c, check=False):
    """Format every .tf, .tfvars and .tftest.hcl file under terraform/ (terraform fmt)."""
    terraform(c, TERRAFORM_DIR, "fmt", "-recursive", *["-check", "-diff"] * check)


def configurations() -> list[str]:
    """Every folder of .tf files under terraform/ (modules, stacks, bootstraps), relative to it."""
    files = [f for f in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in f.parts]
    return sorted({file.parent.relative_to(TERRAFORM_DIR).as_posix() for file in files})


def provider_mirror() -> Path | None:
    """$TF_PROVIDER_MIRROR, when it holds hashicorp/aws."""
    mirror = Path(os.environ.get("TF_PROVIDER_MIRROR") or "/nonexistent")
    return mirror if (mirror / "registry.terraform.io" / "hashicorp" / "aws").is_dir() else None


@task(help={"offline": "only the aws-only configurations, hashicorp/aws from $TF_PROVIDER_MIRROR"})
def validate(c, offline=False):
    """terraform fmt -check, then init, validate and (where it has tests) terraform test of every
    configuration, in a scratch copy of terraform/ (init writes lock files next to the code)."""
    mirror = provider_mirror()
    if offline and not mirror:
        raise Exit(f"error: no provider mirror. Fix: {MIRROR_FIX}", code=1)
    fmt(c, check=True)
    with tempfile.TemporaryDirectory(prefix="tf-validate-") as tmp:
        skip = shutil.ignore_patterns("*.tfvars", "*.tfstate*", ".terraform*")
        shutil.copytree(TERRAFORM_DIR, Path(tmp) / "terraform", ignore=skip)
        for name in configurations():
            if offline and not any(fnmatch(name, pattern) for pattern in OFFLINE):
                print(f"not run offline: {name} needs more than hashicorp/aws")
                continue
            folder, data_dir = Path(tmp) / "terraform" / name, Path(tmp) / "data" / name
            init = ["init", "-backend=false", *[f"-plugin-dir={mirror}"] * offline]
            for args in (init, ["validate"], *[["test"]] * any(folder.glob("tests/*.tftest.hcl"))):
                terraform(c, folder, *args, "-no-color", data_dir=data_dir, hide="out")
    print("tf.validate: ok")


ns = Collection("tf", stacks, plan, apply, comment, drift, bootstrap, fmt, validate)
