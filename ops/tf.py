"""Terraform for DigitalOcean and AWS: `invoke tf.stacks`, `tf.plan`, `tf.apply`, `tf.comment`,
`tf.drift`, `tf.bootstrap`, `tf.fmt`, `tf.validate`, each a thin front to terraform (and gh).
terraform/README.md explains the stacks, their state, their var files and the pipeline."""

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
# Apply order: `shared` is account-wide, the others exist per environment and find what the
# previous one made by name. do/app-platform (stage without Kubernetes) runs only when named.
STACKS = ("shared", "infra", "tooling", "apps")
ALL_STACKS = (*STACKS, "app-platform")
TERRAFORM_FIX = "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
# What `tf.validate --offline` can init from a mirror of hashicorp/aws alone.
OFFLINE = ("aws/modules/*", "aws/stacks/shared", "aws/stacks/infra", "aws/bootstrap")
PLAN_TEXT_LIMIT = 60_000  # GitHub refuses a comment or issue body over 65,536 characters
HELP = {
    "stack": "CLOUD/STACK (aws/infra, do/shared, ...) or CLOUD: infra, tooling, apps; repeatable",
    "env": "stage or prod (not for CLOUD/shared)",
    "changed-from": "only the stacks that files changed since this git ref touch, and downstream",
    "lock": "take the state lock (--no-lock: a read-only plan, as pull requests do)",
    "destroy": "plan the destruction (tf.bootstrap: tear it down, after every stack)",
    "plan": "plan each stack right before its apply (CI)",
    "json": "JSON for GitHub Actions: targets, and the clouds with shared and with env stacks",
    "pr": "the pull request to create or update the comment on (gh); without it, print it",
    "check": "fail, showing the diff, if a file needs formatting",
    "offline": "only the aws-only configurations, hashicorp/aws from $TF_PROVIDER_MIRROR",
}


def options(*names: str) -> dict:
    helped = {name: HELP[name] for name in names if name in HELP}
    return {"help": helped, "iterable": ["stack"] * ("stack" in names)}


def terraform(c, folder: Path, *args: str, **run):
    """`terraform -chdir=FOLDER ARGS`, echoed on stderr, never prompting."""
    command = shlex.join([require("terraform", TERRAFORM_FIX), f"-chdir={folder}", *args])
    print(f"$ {command.replace(f'{REPO_ROOT}/', '')}", file=sys.stderr, flush=True)
    env = {"TF_INPUT": "0", "TF_IN_AUTOMATION": "1", **run.pop("env", {})}
    return c.run(command, env=env, **{"pty": sys.stdout.isatty(), "in_stream": False, **run})


@dataclass(frozen=True)
class Target:
    """One stack of one environment; `shared` is an environment of its own (one per account)."""

    cloud: str
    env: str
    stack: str

    name = property(lambda self: f"{self.cloud}/{self.stack}")
    folder = property(lambda self: TERRAFORM_DIR / self.cloud / "stacks" / self.stack)

    def __str__(self) -> str:
        return self.name if self.stack == "shared" else f"{self.name} ({self.env})"

    def plan_file(self, commit: str) -> Path:
        return self.folder / ".terraform" / self.env / "plans" / f"{commit}.tfplan"

    def terraform(self, c, *args: str, **run):  # a .terraform per environment: its own state
        data_dir = {"TF_DATA_DIR": str(self.folder / ".terraform" / self.env)}
        return terraform(c, self.folder, *args, env=data_dir, **run)


def targets(stacks: list[str], env: str, changed_from: str = "") -> list[Target]:
    """--stack values (`aws/infra`, `aws/shared`, or `aws` for its infra, tooling and apps) in
    apply order; with --changed-from only the stacks the change touches, and their downstream."""
    found = set()
    for value in stacks:
        cloud, _, stack = value.partition("/")
        if cloud not in CLOUDS or not (TERRAFORM_DIR / cloud / "stacks" / stack).is_dir():
            choices = f"{', '.join(STACKS)}; do/app-platform"
            raise Exit(f"error: unknown stack {value!r}; use CLOUD or CLOUD/STACK ({choices})", 2)
        if stack != "shared" and env not in ENVIRONMENTS:
            raise Exit(f"error: --env must be one of stage, prod for {value} (got {env!r})", 2)
        for name in [stack] if stack else STACKS[1:]:
            found.add(Target(cloud, "shared" if name == "shared" else env, name))
    if changed_from:
        changed = touched(changed_from)
        found = {target for target in found if (target.cloud, target.stack) in changed}
    return sorted(found, key=lambda t: (ALL_STACKS.index(t.stack), CLOUDS.index(t.cloud)))


def touched(ref: str) -> set[tuple[str, str]]:
    """(cloud, stack) whose inputs changed since `ref`, and every stack downstream. A stack reads
    its folder and the local modules it calls, its cloud's backend/ and common.tfvars(.example),
    and apps the Argo CD objects it renders."""
    files = git("diff", "--name-only", ref, "HEAD").split()
    changed = [(REPO_ROOT / file.removesuffix(".example")).resolve() for file in files]
    found = set()
    for cloud, stack in ((cloud, stack) for cloud in CLOUDS for stack in STACKS):
        inputs = [(TERRAFORM_DIR / cloud / "stacks" / stack).resolve()]
        for folder in inputs:  # grows as it is read: the modules' own module calls too
            code = "".join(file.read_text() for file in folder.glob("*.tf"))
            calls = re.findall(r'source\s*=\s*"(\.\.?/[^"]+)"', code)
            inputs += sorted({(folder / source).resolve() for source in calls} - set(inputs))
        inputs += [TERRAFORM_DIR / cloud / "backend", TERRAFORM_DIR / cloud / "common.tfvars"]
        if stack == "apps":
            inputs += [REPO_ROOT / "kustomize/argocd" / cloud, REPO_ROOT / "kustomize/argocd/base"]
        if any(path.is_relative_to(i.resolve()) for path in changed for i in inputs):
            found |= {(cloud, later) for later in STACKS[STACKS.index(stack) :]}
    return found


def source_commit() -> str:
    """HEAD, `-dirty` when terraform/ or kustomize/ has changes (but lock files init writes)."""
    locks = ":(exclude,glob)**/.terraform.lock.hcl"
    dirty = git("status", "--porcelain", "--", "terraform", "kustomize", locks)
    return git("rev-parse", "HEAD") + ("-dirty" if dirty else "")


def plan_stack(c, target: Target, plan_file: Path, *flags: str):
    """init against the stack's state, then plan into plan_file with the cloud's common.tfvars,
    the stack's own var file (where it has an .example), then what invoke passes."""
    from ops.release import image_entry  # ops.release imports this module

    print(f"\n=== {target} ===", flush=True)
    for variable in ("DIGITALOCEAN_TOKEN", "AWS_ACCESS_KEY_ID") * (target.cloud == "do"):
        if not os.environ.get(variable):
            fix = "export an API token and your Spaces keys (AWS_ACCESS_KEY_ID, _SECRET_ACCESS_KEY)"
            raise Exit(f"error: {variable} is not set. Fix: {fix}", code=1)
    key = "shared" if target.stack == "shared" else f"{target.env}/{target.stack}"
    backend = TERRAFORM_DIR / target.cloud / "backend" / f"{target.env}.hcl"
    state = [f"-backend-config={backend}", f"-backend-config=key={target.cloud}/{key}.tfstate"]
    target.terraform(c, "init", "-reconfigure", *state)
    passed = {} if target.stack == "shared" else {"environment": target.env}
    if target.stack == "tooling":  # the pinned Argo CD install manifest (HA in prod)
        pinned = VERSIONS["manifests"]["argo-cd-ha" if target.env == "prod" else "argo-cd"]
        passed["argocd_install_yaml"] = download(pinned["url"], pinned["sha256"])
    if target.stack == "apps":  # no Application before the overlay pins a release: Argo CD
        overlay = f"{target.cloud}/{target.env}"  # would sync the placeholder (ImagePullBackOff)
        docs = k8s.documents(k8s.render(f"argocd/{overlay}"))
        kustomization = k8s.KUSTOMIZE_DIR / "overlays" / overlay / "kustomization.yaml"
        if not (pinned := image_entry(kustomization.read_text())) or not pinned.is_release:
            docs = [doc for doc in docs if doc["kind"] != "Application"]
            print(f"  note: overlays/{overlay} pins no release: the AppProject only", flush=True)
        passed["argocd_manifests_yaml"] = yaml.safe_dump_all(docs)
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    (passed_file := plan_file.with_suffix(".tfvars.json")).write_text(json.dumps(passed))
    files = [TERRAFORM_DIR / target.cloud / "common.tfvars", target.folder / f"{target.env}.tfvars"]
    files = [f for f in files if f.is_file() or f.with_suffix(".tfvars.example").is_file()]
    var_files = [f"-var-file={file}" for file in (*files, passed_file)]
    warn = "-detailed-exitcode" in flags  # exit 2 (changes) is the caller's to read
    return target.terraform(c, "plan", f"-out={plan_file}", *flags, *var_files, warn=warn)


@task(**options("stack", "env", "changed-from", "lock", "destroy"))
def plan(c, stack, env="", changed_from="", lock=True, destroy=False):
    """terraform init + plan of each stack, saved as the plan of this commit for tf.apply."""
    commit, flags = source_commit(), ["-lock=false"] * (not lock) + ["-destroy"] * destroy
    for target in targets(stack, env, changed_from):
        plan_stack(c, target, target.plan_file(commit), *flags)
    print(f"\nsaved as the plans of {commit[:12]}; `invoke tf.apply` with the same --stack")


@task(**options("stack", "env", "changed-from", "yes", "plan"))
def apply(c, stack, env="", changed_from="", yes=False, plan=False):
    """Apply the saved plans of this commit (tf.plan's), stack by stack; Terraform refuses a
    saved plan whose state changed since."""
    chosen, commit = targets(stack, env, changed_from), source_commit()
    missing = [str(t) for t in chosen if not plan and not t.plan_file(commit).is_file()]
    if missing or commit.endswith("-dirty"):
        why = f"there is none of {commit[:12]} for {', '.join(missing)}"
        why = "terraform/ or kustomize/ has uncommitted changes" if "-dirty" in commit else why
        again = shlex.join(["invoke", "tf.plan", *(f"--stack={s}" for s in stack), f"--env={env}"])
        fix = f"Fix: commit, run `{again}`, read the plan, then apply"
        raise Exit(f"error: tf.apply applies only a saved plan of this commit; {why}. {fix}", 1)
    for target, plan_file in ((target, target.plan_file(commit)) for target in chosen):
        if plan:
            plan_stack(c, target, plan_file)
        print(f"\n=== apply {target} ===", flush=True)
        if not yes:
            target.terraform(c, "show", str(plan_file))
            if not confirm(f"Apply this plan to {target}?"):
                raise Exit(f"tf.apply: {target} not applied (answer was not yes)", code=1)
        target.terraform(c, "apply", str(plan_file))
        plan_file.unlink(missing_ok=True)  # a plan applies once


@task(**options("changed-from", "json"))
def stacks(c, changed_from="", json_=False):
    """Print the stacks a change touches (all without --changed-from) in apply order: shared,
    stage's, prod's; a cloud takes part once it has terraform/<cloud>/backend/<env>.hcl."""
    ready = {c: {f.stem for f in (TERRAFORM_DIR / c / "backend").glob("*.hcl")} for c in CLOUDS}
    clouds = [cloud for cloud in CLOUDS if ready[cloud] >= set(ENVIRONMENTS)]
    if left_out := [f"terraform/{cloud}/backend" for cloud in CLOUDS if cloud not in clouds]:
        print(f"left out, no stage.hcl and prod.hcl yet: {', '.join(left_out)}", file=sys.stderr)
    chosen = targets([f"{cloud}/shared" for cloud in clouds], "", changed_from)
    chosen += [target for env in ENVIRONMENTS for target in targets(clouds, env, changed_from)]
    if not json_:
        return print("\n".join(map(str, chosen)) or "no stack is touched")
    found = [{"name": target.name, **asdict(target)} for target in chosen]
    shared = sorted({t.cloud for t in chosen if t.stack == "shared"})
    environments = sorted({t.cloud for t in chosen if t.stack != "shared"})
    print(json.dumps({"targets": found, "shared": shared, "environments": environments}))


def report(c, target: Target, plan_file: Path, title: str, footer: str) -> Path:
    """A markdown report of a saved plan, written beside it: a marker line to find it by, what it
    destroys (terraform show -json), terraform's summary, then the plan collapsed."""
    run = {"hide": "out", "pty": False}
    plan = json.loads(target.terraform(c, "show", "-json", str(plan_file), **run).stdout)
    text = target.terraform(c, "show", "-no-color", str(plan_file), **run).stdout.strip()
    changes = [(r["address"], r["change"]["actions"]) for r in plan.get("resource_changes", [])]
    # a replacement is a delete and a create, in either order
    gone = [f"> - `{a}`" + " (replaced)" * ("create" in do) for a, do in changes if "delete" in do]
    lines = [f"<!-- {title} -->", f"### {title}", ""]
    if gone:
        lines += ["> [!CAUTION]", f"> **This plan destroys {len(gone)}:**", *gone, ""]
    lines += [f"**{line}**" for line in re.findall(r"^(?:Plan: |No changes\.).*$", text, re.M)]
    if len(text) > PLAN_TEXT_LIMIT:
        text = text[:PLAN_TEXT_LIMIT] + "\n... (cut here: the whole plan is in the job's log)"
    lines += ["", "<details><summary>terraform plan</summary>", "", "```", text, "```"]
    (body := plan_file.with_suffix(".md")).write_text("\n".join([*lines, "</details>", "", footer]))
    return body


def gh(c, *args: str) -> str:
    """The GitHub CLI's output (GH_TOKEN and GH_REPO come from the workflow)."""
    fix = "install the GitHub CLI (https://cli.github.com); GitHub's runners have it"
    return c.run(shlex.join([require("gh", fix), *args]), hide=True, pty=False).stdout


@task(**options("stack", "env", "pr"))
def comment(c, stack, env="", pr=0):
    """Each stack's plan comment, from its saved plan of this commit: printed, or created or
    updated on the pull request (one comment per stack, found by its marker line)."""
    commit = source_commit()
    for target in targets(stack, env):
        title = f"Terraform plan: {target}"
        footer = f"Planned at {commit[:12]}; the next push updates this comment."
        body = report(c, target, target.plan_file(commit), title, footer)
        if not pr:
            print(body.read_text())
            continue
        comments = f"repos/{{owner}}/{{repo}}/issues/{pr}/comments"
        mine = f".[] | select(.body | startswith({json.dumps(f'<!-- {title} -->')})) | .id"
        found = gh(c, "api", "--paginate", comments, "--jq", mine).split()
        edit = ["PATCH", f"repos/{{owner}}/{{repo}}/issues/comments/{found[0]}"] if found else []
        gh(c, "api", "--method", *(edit or ["POST", comments]), "-F", f"body=@{body}")


@task(**options("stack", "env"))
def drift(c, stack, env=""):
    """`terraform plan -detailed-exitcode` of each stack: open or update its drift issue when the
    plan is not empty, close it once the plan is clean again (gh)."""
    label, why = "terraform-drift", "Terraform found changes made outside the pipeline"
    for target in targets(stack, env):
        plan_file, title = target.plan_file("drift"), f"Terraform drift: {target}"
        exited = plan_stack(c, target, plan_file, "-lock=false", "-detailed-exitcode").exited
        if exited not in (0, 2):
            raise Exit(f"tf.drift: terraform plan of {target} failed (exit {exited})", code=1)
        mine = f".[] | select(.title == {json.dumps(title)}) | .number"
        listed = ["issue", "list", "--state", "open", "--label", label, "--json", "number,title"]
        issue = gh(c, *listed, "--jq", mine).split()
        if exited == 0:
            print(f"{target}: no drift")
            if issue:
                gh(c, "issue", "close", issue[0], "--comment", "The plan is clean again: no drift.")
            continue
        footer = "Found by the drift schedule (drift.yml); closes itself once the plan is clean."
        body = str(report(c, target, plan_file, title, footer))
        if not issue:
            gh(c, "label", "create", label, "--force", "--color", "d93f0b", "--description", why)
        new = ["create", "--label", label, "--title", title]
        gh(c, "issue", *(["edit", issue[0]] if issue else new), "--body-file", body)
        print(f"{target}: drift reported in an issue")


@task(**options("cloud", "destroy"))
def bootstrap(c, cloud, destroy=False):
    """Once per account: the state bucket and the workflows' credentials, from
    terraform/<cloud>/bootstrap with local state. Shows the plan and asks first."""
    folder, plan_file = TERRAFORM_DIR / cloud / "bootstrap", ".terraform/bootstrap.tfplan"
    files = [TERRAFORM_DIR / cloud / "common.tfvars", folder / "bootstrap.tfvars"]
    terraform(c, folder, "init")
    flags = [f"-var-file={file}" for file in files] + ["-destroy"] * destroy
    terraform(c, folder, "plan", f"-out={plan_file}", *flags)
    if not confirm(f"{'Destroy' if destroy else 'Create'} the {cloud} bootstrap as planned?"):
        raise Exit("tf.bootstrap: nothing changed (answer was not yes)", code=1)
    terraform(c, folder, "apply", plan_file)  # its outputs: what backend/*.hcl and GitHub need


@task(**options("check"))
def fmt(c, check=False):
    """Format every .tf, .tfvars and .tftest.hcl file under terraform/ (terraform fmt)."""
    terraform(c, TERRAFORM_DIR, "fmt", "-recursive", *["-check", "-diff"] * check)


def configurations() -> list[str]:
    """Every folder of .tf files under terraform/ (modules, stacks, bootstraps), relative to it."""
    files = [f for f in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in f.parts]
    return sorted({file.parent.relative_to(TERRAFORM_DIR).as_posix() for file in files})


@task(**options("offline"))
def validate(c, offline=False):
    """terraform fmt -check, then init, validate and test of every
    configuration, in a scratch copy of terraform/ (init writes lock files beside the code)."""
    mirror = os.environ.get("TF_PROVIDER_MIRROR", "")
    if offline and not (mirror and Path(mirror, "registry.terraform.io/hashicorp/aws").is_dir()):
        fix = "set TF_PROVIDER_MIRROR to a `terraform providers mirror` holding hashicorp/aws"
        raise Exit(f"error: no provider mirror. Fix: {fix} (terraform/README.md, 'Checks')", 1)
    fmt(c, check=True)
    with tempfile.TemporaryDirectory(prefix="tf-validate-") as tmp:
        skip = shutil.ignore_patterns("*.tfvars", "*.tfstate*", ".terraform*")
        copy = shutil.copytree(TERRAFORM_DIR, Path(tmp) / "terraform", ignore=skip)
        for name in configurations():
            if offline and not any(fnmatch(name, pattern) for pattern in OFFLINE):
                continue
            init = ["init", "-backend=false", *[f"-plugin-dir={mirror}"] * offline]
            for args in (init, ["validate"], ["test"]):  # test: 0 passed where it has none
                terraform(c, copy / name, *args, "-no-color", hide="out")
    print("tf.validate: ok")


ns = Collection("tf", stacks, plan, apply, comment, drift, bootstrap, fmt, validate)
