"""Terraform for DigitalOcean and AWS: `invoke tf.plan`, `tf.apply`, `tf.fmt`, `tf.validate`.

Each task runs terraform itself; terraform/README.md explains the stacks, their state and the
var files each one reads.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import k8s
from ops.k8s import RenderError, documents, render
from ops.tools import REPO_ROOT, VERSIONS, confirm, download, require

TERRAFORM_DIR = REPO_ROOT / "terraform"
CLOUDS = ("do", "aws")
ENVIRONMENTS = ("stage", "prod")
# Apply order. `shared` is account-wide; the rest exist once per environment and each finds
# what the previous one made by name (`<project>-<env>`), not through remote state.
STACKS = ("shared", "infra", "tooling", "apps", "app-platform")
# What `tf.plan` runs without --stack. app-platform (DigitalOcean stage on App Platform
# instead of DOKS) runs only when named.
ENVIRONMENT_STACKS = STACKS[1:4]
TERRAFORM_FIX = "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
# The configurations that need only hashicorp/aws: `tf.validate --offline` can init them from a
# provider mirror. The others need the registry (GitHub Actions runs them).
OFFLINE = ("aws/modules/*", "aws/stacks/shared", "aws/stacks/infra")
DO_CREDENTIALS = {
    "DIGITALOCEAN_TOKEN": "export an API token "
    "(https://docs.digitalocean.com/reference/api/create-personal-access-token/)",
    "AWS_ACCESS_KEY_ID": "export your Spaces access key and secret as AWS_ACCESS_KEY_ID / "
    "AWS_SECRET_ACCESS_KEY (the state backend reads them)",
}
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
        return self.name.split("/")[-2] == "stacks"

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


# --- plan / apply ------------------------------------------------------------------------


def stack_dir(cloud: str, stack: str) -> Path:
    return TERRAFORM_DIR / cloud / "stacks" / stack


def data_dir(cloud: str, env: str, stack: str) -> Path:
    """A stack's .terraform folder for one environment (the backend key differs, not the code)."""
    return stack_dir(cloud, stack) / ".terraform" / ("shared" if stack == "shared" else env)


def state_key(cloud: str, env: str, stack: str) -> str:
    """Where each stack keeps its state in the backend bucket."""
    return f"{cloud}/shared.tfstate" if stack == "shared" else f"{cloud}/{env}/{stack}.tfstate"


def backend_config(cloud: str, env: str, stack: str) -> list[str]:
    """The -backend-config values of a stack: the cloud's backend.hcl, then its state key."""
    return [str(TERRAFORM_DIR / cloud / "backend.hcl"), f"key={state_key(cloud, env, stack)}"]


def var_files(cloud: str, env: str, stack: str) -> list[Path]:
    """The cloud's common.tfvars, then the stack's own file (a later file wins). A file is
    needed exactly where the layout has its .example."""
    own = stack_dir(cloud, stack) / ("shared.tfvars" if stack == "shared" else f"{env}.tfvars")
    candidates = (TERRAFORM_DIR / cloud / "common.tfvars", own)
    return [f for f in candidates if f.is_file() or f.with_suffix(".tfvars.example").is_file()]


def preflight(cloud: str, env: str, stack: str) -> None:
    """Stop at the first missing piece, saying how to fix it."""
    require("terraform", TERRAFORM_FIX)
    if not stack_dir(cloud, stack).is_dir():
        raise Exit(f"error: terraform/{cloud} has no stack {stack}", code=2)
    for file in (TERRAFORM_DIR / cloud / "backend.hcl", *var_files(cloud, env, stack)):
        if not file.is_file():
            raise Exit(
                f"error: {file.relative_to(REPO_ROOT)} is missing. Fix: copy {file.name}.example "
                "next to it and fill it in (terraform/README.md, 'Settings').",
                code=1,
            )
    missing = [v for v in DO_CREDENTIALS if cloud == "do" and not os.environ.get(v)]
    if missing:
        raise Exit(f"error: {missing[0]} is not set. Fix: {DO_CREDENTIALS[missing[0]]}", code=1)


def _terraform(c, cloud: str, env: str, stack: str, *args: str):
    """terraform in a stack folder, echoed, with the environment's data dir."""
    terraform = require("terraform", TERRAFORM_FIX)
    command = shlex.join([terraform, f"-chdir={stack_dir(cloud, stack)}", *args])
    print(f"$ {command.replace(str(REPO_ROOT) + '/', '')}", flush=True)
    env = terraform_env(data_dir(cloud, env, stack))
    return c.run(command, env=env, pty=sys.stdout.isatty())


def plan_stack(c, cloud: str, env: str, stack: str, plan_file: Path, backend: list[str]) -> None:
    """init one stack against `backend` (its -backend-config values), then plan into plan_file."""
    init = ["init", "-input=false", "-reconfigure", *(f"-backend-config={b}" for b in backend)]
    _terraform(c, cloud, env, stack, *init)
    plan = ["plan", "-input=false", f"-out={plan_file}"]
    plan += [f"-var-file={file}" for file in var_files(cloud, env, stack)]
    if stack != "shared":
        plan.append(f"-var=environment={env}")
    if stack == "tooling":
        plan.append(f"-var-file={_argocd_install_var_file(env, plan_file.parent)}")
    if stack == "apps":
        plan.append(f"-var-file={_argocd_var_file(cloud, env, plan_file.parent)}")
    _terraform(c, cloud, env, stack, *plan)


def _argocd_install_var_file(env: str, folder: Path) -> Path:
    """Argo CD's install manifest at the release versions.yaml pins (HA in prod), downloaded
    and checked against its sha256, as a var file for the tooling stack."""
    pinned = VERSIONS["manifests"]["argo-cd-ha" if env == "prod" else "argo-cd"]
    path = folder / f"argocd-install-{env}.tfvars.json"
    path.write_text(json.dumps({"argocd_install_yaml": download(pinned["url"], pinned["sha256"])}))
    return path


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


def _each_stack(c, cloud: str, env: str, stack: str, apply: bool, yes: bool) -> None:
    for value, choices, what in ((cloud, CLOUDS, "cloud"), (env, ENVIRONMENTS, "env")):
        if value not in choices:
            message = f"error: --{what} must be one of {', '.join(choices)} (got {value!r})"
            raise Exit(message, code=2)
    if stack and stack not in STACKS:
        raise Exit(f"error: unknown stack {stack!r}; choose one of {', '.join(STACKS)}", code=2)
    stacks = (stack,) if stack else ENVIRONMENT_STACKS
    for name in stacks:  # all of them before the first change
        preflight(cloud, env, name)
    with tempfile.TemporaryDirectory(prefix="tf-plan-") as tmp:
        for name in stacks:
            where = f"{cloud}/shared" if name == "shared" else f"{cloud}/{env}/{name}"
            print(f"\n=== {where} ===", flush=True)
            plan_file = Path(tmp) / f"{name}.tfplan"
            plan_stack(c, cloud, env, name, plan_file, backend_config(cloud, env, name))
            if not apply:
                continue
            if not yes and not confirm(f"Apply this plan to {where}?"):
                raise Exit(f"tf.apply: {where} not applied (answer was not yes)", code=1)
            _terraform(c, cloud, env, name, "apply", "-input=false", str(plan_file))


CHOICES = {
    "cloud": "do or aws",
    "env": "stage or prod",
    "stack": "one stack (shared, infra, tooling, apps); default: infra, tooling, apps in order",
}


@task(help=CHOICES)
def plan(c, cloud, env, stack=""):
    """Show what Terraform would change in a cloud environment (one stack or all, in order)."""
    _each_stack(c, cloud, env, stack, apply=False, yes=False)


@task(help={**CHOICES, "yes": "apply without asking (CI)"})
def apply(c, cloud, env, stack="", yes=False):
    """Plan, confirm, then apply each stack of a cloud environment in order."""
    _each_stack(c, cloud, env, stack, apply=True, yes=yes)


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
ns.add_task(plan)
ns.add_task(apply)
ns.add_task(fmt)
ns.add_task(validate)
