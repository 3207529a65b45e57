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
from ops.k8s import RenderError, documents, render
from ops.tools import REPO_ROOT, VERSIONS, confirm, download, git, require

TERRAFORM_DIR = REPO_ROOT / "terraform"
CLOUDS = ("do", "aws")
ENVIRONMENTS = ("stage", "prod")
# Apply order. `shared` is account-wide; the rest exist once per environment and each finds
# what the previous one made by name (`<project>-<env>`), not through remote state.
STACKS = ("shared", "infra", "tooling", "apps")
ENVIRONMENT_STACKS = STACKS[1:]
# DigitalOcean stage on App Platform instead of tooling + apps: planned only when named
# (`--stack do/app-platform`), never as another's downstream.
ALL_STACKS = (*STACKS, "app-platform")
TERRAFORM_ENV = {"TF_INPUT": "0", "TF_IN_AUTOMATION": "1"}  # never prompt
TERRAFORM_FIX = "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
GH_FIX = "install the GitHub CLI (https://cli.github.com); GitHub's runners have it"
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


def terraform(c, folder: Path, *args: str, data_dir: Path | None = None, **run):
    """`terraform -chdir=FOLDER ARGS`, echoed on stderr; TF_DATA_DIR gives each environment of a
    stack its own .terraform (the backend key differs, not the code)."""
    command = shlex.join([require("terraform", TERRAFORM_FIX), f"-chdir={folder}", *args])
    print(f"$ {command.replace(f'{REPO_ROOT}/', '')}", file=sys.stderr, flush=True)
    env = TERRAFORM_ENV | ({"TF_DATA_DIR": str(data_dir)} if data_dir else {})
    return c.run(command, env=env, **{"pty": sys.stdout.isatty(), "in_stream": False, **run})


def need(*files: Path) -> None:
    """Stop at the first missing settings file, saying which .example to copy."""
    for file in files:
        if not file.is_file():
            raise Exit(
                f"error: {file.relative_to(REPO_ROOT)} is missing. Fix: copy {file.name}.example "
                "next to it and fill it in (terraform/README.md, 'Settings').",
                code=1,
            )


# --- which stacks, in which order ---------------------------------------------------------


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

    @property
    def state_key(self) -> str:
        shared = self.stack == "shared"
        return f"{self.cloud}/{'shared' if shared else f'{self.env}/{self.stack}'}.tfstate"

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


def targets(stacks: list[str], env: str) -> list[Target]:
    """`aws/infra`, `aws/shared` or `aws` (its infra, tooling, apps) as targets, in apply order."""
    found = set()
    for value in stacks:
        cloud, _, stack = value.partition("/")
        if cloud not in CLOUDS or stack not in ("", *ALL_STACKS):
            choices = "CLOUD or CLOUD/STACK with CLOUD in do, aws and STACK in "
            choices += ", ".join(ALL_STACKS)
            raise Exit(f"error: unknown stack {value!r}; use {choices}", code=2)
        for name in [stack] if stack else ENVIRONMENT_STACKS:
            if name != "shared" and env not in ENVIRONMENTS:
                raise Exit(f"error: --env must be one of stage, prod for {value} (got {env!r})", 2)
            found.add(Target(cloud, "shared" if name == "shared" else env, name))
    return sorted(found, key=lambda t: (ALL_STACKS.index(t.stack), CLOUDS.index(t.cloud)))


def changed_files(base: str) -> list[str]:
    return git("diff", "--name-only", base, "HEAD").split()


def module_sources(folder: Path) -> set[Path]:
    """The local module folders a configuration calls, and theirs in turn."""
    found: set[Path] = set()
    for file in folder.glob("*.tf"):
        for source in re.findall(r'source\s*=\s*"(\.\.?/[^"]+)"', file.read_text()):
            if (module := (folder / source).resolve()) not in found:
                found |= {module, *module_sources(module)}
    return found


def inputs(cloud: str, stack: str) -> list[Path]:
    """What a stack's plan reads: its folder and the modules it calls, its cloud's backend
    files and common.tfvars, and for apps the Argo CD objects it renders."""
    folder = (TERRAFORM_DIR / cloud / "stacks" / stack).resolve()
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


def preflight(target: Target) -> None:
    """Stop at the first missing piece, saying how to fix it."""
    if not target.folder.is_dir():
        raise Exit(f"error: terraform/{target.cloud} has no stack {target.stack}", code=2)
    need(target.backend_file, *target.var_files())
    for variable, fix in DO_CREDENTIALS.items():
        if target.cloud == "do" and not os.environ.get(variable):
            raise Exit(f"error: {variable} is not set. Fix: {fix}", code=1)


def source_commit() -> str:
    """HEAD's commit, with `-dirty` when terraform/ or kustomize/ has uncommitted changes (but
    for the provider lock files `terraform init` writes or extends)."""
    locks = ":(exclude,glob)**/.terraform.lock.hcl"
    dirty = git("status", "--porcelain", "--", "terraform", "kustomize", locks)
    return git("rev-parse", "HEAD") + ("-dirty" if dirty else "")


def plan_one(c, target: Target, plan_file: Path, *flags: str):
    """init against the target's state, then plan into plan_file; returns the plan's result."""
    backend = [target.backend_file, f"key={target.state_key}"]
    target.terraform(c, "init", "-reconfigure", *(f"-backend-config={b}" for b in backend))
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    args = [f"-out={plan_file}", *flags, *(f"-var-file={f}" for f in target.var_files())]
    if target.stack != "shared":
        args.append(f"-var=environment={target.env}")
    if target.stack == "tooling":
        args.append(f"-var-file={argocd_install_var_file(target.env, plan_file.parent)}")
    if target.stack == "apps":
        args.append(f"-var-file={argocd_var_file(target.cloud, target.env, plan_file.parent)}")
    return target.terraform(c, "plan", *args, warn="-detailed-exitcode" in flags)  # 2: changes


def argocd_install_var_file(env: str, folder: Path) -> Path:
    """Argo CD's install manifest at the release versions.yaml pins (HA in prod), downloaded
    and checked against its sha256, as a var file for the tooling stack."""
    pinned = VERSIONS["manifests"]["argo-cd-ha" if env == "prod" else "argo-cd"]
    path = folder / f"argocd-install-{env}.tfvars.json"
    path.write_text(json.dumps({"argocd_install_yaml": download(pinned["url"], pinned["sha256"])}))
    return path


def argocd_var_file(cloud: str, env: str, folder: Path) -> Path:
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


def plan_all(c, chosen: list[Target], *flags: str) -> str:
    """Check every target's files, then plan each into its saved plan of this commit."""
    for target in chosen:  # all of them before the first plan
        preflight(target)
    commit = source_commit()
    for target in chosen:
        print(f"\n=== {target} ===", flush=True)
        plan_one(c, target, target.plan_file(commit), *flags)
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
    flags = ["-lock=false"] * (not lock) + ["-destroy"] * destroy
    plan_all(c, select(stack, env, changed_from), *flags)


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
    missing = [t for t in chosen if not plan and not t.plan_file(commit).is_file()]
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
        plan_file = target.plan_file(plan_all(c, [target]) if plan else commit)
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
    backends = {c: [Target(c, env, "infra").backend_file for env in ENVIRONMENTS] for c in CLOUDS}
    clouds = [cloud for cloud in CLOUDS if all(f.is_file() for f in backends[cloud])]
    for cloud in sorted(set(CLOUDS) - set(clouds)):
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

# resource_changes[].change.actions of `terraform show -json` (Terraform's JSON output format);
# a replacement is two actions, delete and create, in either order.
KINDS = {"create": "add", "update": "change", "delete": "destroy"}
PLAN_TEXT_LIMIT = 60_000  # GitHub refuses a comment or issue body over 65,536 characters
DRIFT_LABEL = "terraform-drift"


def plan_changes(plan_json: dict) -> dict[str, list[str]]:
    """add / change / destroy / replace -> the addresses of the resources, in plan order."""
    found: dict[str, list[str]] = {kind: [] for kind in (*KINDS.values(), "replace")}
    for resource in plan_json.get("resource_changes", []):
        actions = resource["change"]["actions"]
        if kind := "replace" if len(actions) == 2 else KINDS.get(actions[0]):
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
    if drifted := [f"`{r['address']}`" for r in plan_json.get("resource_drift", [])]:
        lines += [f"Changed outside Terraform: {', '.join(drifted)}", ""]
    if adds or destroys or changes["change"]:
        lines.append(
            f"**{adds} to add, {len(changes['change'])} to change, {destroys} to destroy.**"
        )
    else:
        lines.append("**No changes.** The infrastructure matches the configuration.")
    text = plan_text.strip()
    if len(text) > PLAN_TEXT_LIMIT:
        text = text[:PLAN_TEXT_LIMIT] + "\n... (cut here: the whole plan is in the job's log)"
    lines += ["", "<details><summary>terraform plan</summary>", "", "```", text, "```"]
    return "\n".join([*lines, "", "</details>", "", footer, ""])


def write_report(c, target: Target, plan_file: Path, title: str, footer: str) -> Path:
    """The report of a saved plan (`terraform show -json` and its text), next to it."""
    run = {"hide": "out", "pty": False}
    plan_json = json.loads(target.terraform(c, "show", "-json", str(plan_file), **run).stdout)
    text = target.terraform(c, "show", "-no-color", str(plan_file), **run).stdout
    body = plan_file.with_suffix(".md")
    body.write_text(report(title, plan_json, text, footer))
    return body


def one(stack: str, env: str) -> Target:
    if len(chosen := targets([stack], env)) != 1:
        raise Exit(f"error: --stack must name one stack, CLOUD/STACK (got {stack!r})", code=2)
    return chosen[0]


def gh(c, *args: str) -> str:
    """The GitHub CLI's output (GH_TOKEN and GH_REPO come from the workflow)."""
    return c.run(shlex.join([require("gh", GH_FIX), *args]), hide=True, pty=False).stdout


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
    footer = f"Planned at {commit[:12]}; the next push updates this comment."
    title = f"Terraform plan: {target}"
    body = write_report(c, target, plan_file, title, footer)
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
    target = one(stack, env)
    preflight(target)
    plan_file = target.plan_file("drift")
    exited = plan_one(c, target, plan_file, "-lock=false", "-detailed-exitcode").exited
    if exited not in (0, 2):
        raise Exit(f"tf.drift: terraform plan of {target} failed (exit {exited})", code=1)
    title = f"Terraform drift: {target}"
    mine = f".[] | select(.title == {json.dumps(title)}) | .number"
    listed = ["issue", "list", "--state", "open", "--label", DRIFT_LABEL, "--json", "number,title"]
    issue = gh(c, *listed, "--jq", mine).split()
    if exited == 0:
        print(f"{target}: no drift")
        if issue:
            gh(c, "issue", "close", issue[0], "--comment", "The plan is clean again: no drift.")
        return
    footer = "Found by the drift schedule (drift.yml); closes itself once the plan is clean."
    body = str(write_report(c, target, plan_file, title, footer))
    if issue:
        gh(c, "issue", "edit", issue[0], "--body-file", body)
    else:
        why = "Terraform found changes made outside the pipeline"
        gh(c, "label", "create", DRIFT_LABEL, "--force", "--color", "d93f0b", "--description", why)
        gh(c, "issue", "create", "--label", DRIFT_LABEL, "--body-file", body, "--title", title)
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


@dataclass(frozen=True)
class Configuration:
    """A folder of .tf files under terraform/: a reusable module or a root stack."""

    name: str  # relative to terraform/, e.g. aws/stacks/infra

    @property
    def is_stack(self) -> bool:
        """A root module: a stack, or a cloud's bootstrap."""
        return self.name.split("/")[-2] == "stacks" or self.name.endswith("/bootstrap")

    offline = property(lambda self: any(fnmatch(self.name, p) for p in OFFLINE))


def configurations() -> list[Configuration]:
    """Every module and stack under terraform/, modules first."""
    tf_files = [f for f in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in f.parts]
    names = {file.parent.relative_to(TERRAFORM_DIR).as_posix() for file in tf_files}
    return sorted(map(Configuration, names), key=lambda c: (c.is_stack, c.name))


def provider_mirror() -> Path | None:
    """$TF_PROVIDER_MIRROR, when it holds hashicorp/aws."""
    mirror = Path(os.environ.get("TF_PROVIDER_MIRROR") or "/nonexistent")
    return mirror if (mirror / "registry.terraform.io" / "hashicorp" / "aws").is_dir() else None


@task(help={"offline": "only the aws-only configurations, hashicorp/aws from $TF_PROVIDER_MIRROR"})
def validate(c, offline=False):
    """terraform fmt -check, then init, validate and (where it has tests) terraform test of every
    configuration, in a scratch copy of terraform/ (init writes lock files next to the code)."""
    if offline and not (mirror := provider_mirror()):
        raise Exit(f"error: no provider mirror. Fix: {MIRROR_FIX}", code=1)
    fmt(c, check=True)
    with tempfile.TemporaryDirectory(prefix="tf-validate-") as tmp:
        tree, skip = Path(tmp) / "terraform", ("*.tfvars", "*.tfstate*", ".terraform*")
        shutil.copytree(TERRAFORM_DIR, tree, ignore=shutil.ignore_patterns(*skip))
        for config in configurations():
            if offline and not config.offline:
                print(f"not run offline: {config.name} needs more than hashicorp/aws")
                continue
            folder, data_dir = tree / config.name, Path(tmp) / "data" / config.name
            init = ["init", "-backend=false", *[f"-plugin-dir={mirror}"] * offline]
            tested = any(folder.glob("tests/*.tftest.hcl"))
            for args in (init, ["validate"], *[["test"]] * tested):
                terraform(c, folder, *args, "-no-color", data_dir=data_dir, hide="out")
    print("tf.validate: ok")


ns = Collection("tf", stacks, plan, apply, comment, drift, bootstrap, fmt, validate)
