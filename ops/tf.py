"""Terraform for DigitalOcean and AWS: `invoke tf.plan`, `tf.apply`, `tf.fmt`, `tf.validate`.

Layout (terraform/README.md): `terraform/<cloud>/stacks/<stack>` are the root configurations,
applied in the order of STACKS; `shared` is account-wide (the image registry), the others
exist once per environment, each with its own state `<cloud>/<env>/<stack>.tfstate` in the
bucket named by `terraform/<cloud>/backend.hcl`.

The helpers below (which configurations exist, which need only the aws provider, where a
provider mirror is, how to read provider schemas from the CDKTF packages) are shared with
tests/terraform, which proves the code offline.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import hcl2
import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops.k8s import RenderError, render
from ops.tools import REPO_ROOT, confirm, require, uv
from ops.tools import run_checkov as run_checkov_tool

TERRAFORM_DIR = REPO_ROOT / "terraform"
CLOUDS = ("do", "aws")
ENVIRONMENTS = ("stage", "prod")
# Apply order. `shared` is account-wide; the rest exist once per environment and each
# reads what the previous one made (by resource name, not by remote state).
STACKS = ("shared", "infra", "tooling", "apps")
ENVIRONMENT_STACKS = STACKS[1:]
TERRAFORM_FIX = "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
CHECKOV_SKIPS_FILE = TERRAFORM_DIR / "checkov-skips.yaml"
SCHEMAS_FILE = REPO_ROOT / "tests" / "terraform" / "provider_schemas.json"
# Prebuilt CDKTF bindings: the provider schemas they were generated from, offline.
CDKTF_PACKAGES = {
    "digitalocean": "cdktf-cdktf-provider-digitalocean==13.14.1",
    "helm": "cdktf-cdktf-provider-helm==12.1.2",
    "kubernetes": "cdktf-cdktf-provider-kubernetes==12.1.1",
    "random": "cdktf-cdktf-provider-random==12.0.1",
}
# Arguments every resource, data source and module block accepts.
META_ARGUMENTS = frozenset(
    {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
)
HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)


# --- Configurations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Configuration:
    """A folder of .tf files: a reusable module or a root stack."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.relative_to(TERRAFORM_DIR).as_posix()

    @property
    def is_stack(self) -> bool:
        return self.path.parent.name == "stacks"

    def files(self) -> list[Path]:
        return sorted(self.path.glob("*.tf"))

    def parsed(self) -> list[dict]:
        return [parse(file) for file in self.files()]

    def required_providers(self) -> set[str]:
        names = set()
        for document in self.parsed():
            for block in document.get("terraform", []):
                for providers in block.get("required_providers", []):
                    names |= set(providers)
        return names

    @property
    def aws_only(self) -> bool:
        """Needs only hashicorp/aws: terraform init/validate/test work from a mirror."""
        return self.required_providers() == {"aws"} and all(
            configuration_at(source).aws_only for source in self.module_sources()
        )

    def module_sources(self) -> list[Path]:
        sources = []
        for document in self.parsed():
            for block in document.get("module", []):
                for arguments in block.values():
                    sources.append((self.path / arguments["source"]).resolve())
        return sources

    def has_tests(self) -> bool:
        return any((self.path / "tests").glob("*.tftest.hcl"))


@cache
def parse(file: Path) -> dict:
    """A .tf file as python-hcl2 reads it (blocks are lists of dicts, strings unquoted)."""
    with file.open() as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


def configuration_at(path: Path) -> Configuration:
    return Configuration(path.resolve())


def configurations() -> list[Configuration]:
    """Every module and stack under terraform/, modules first."""
    folders = {
        file.parent for file in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in file.parts
    }
    found = [Configuration(folder) for folder in folders]
    return sorted(found, key=lambda c: (c.is_stack, c.name))


def stack_dir(cloud: str, stack: str) -> Path:
    return TERRAFORM_DIR / cloud / "stacks" / stack


# --- Provider mirror (offline terraform init) -------------------------------------------

MIRROR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path("/usr/share/terraform/plugins"),
    Path("/usr/local/share/terraform/plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
)


@cache
def provider_mirror() -> Path | None:
    """A filesystem mirror holding hashicorp/aws (TF_PROVIDER_MIRROR, then common places)."""
    candidates = (
        [Path(os.environ["TF_PROVIDER_MIRROR"])] if "TF_PROVIDER_MIRROR" in os.environ else []
    )
    candidates += MIRROR_CANDIDATES
    for root in candidates:
        if (root / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return root
    return None


def terraform_env(data_dir: Path | None = None) -> dict[str, str]:
    """Environment for terraform: no interactive input, a CLI config so it does not warn."""
    env = {**os.environ, "TF_INPUT": "0", "TF_IN_AUTOMATION": "1"}
    configured = env.get("TF_CLI_CONFIG_FILE") or str(Path.home() / ".terraformrc")
    if not Path(configured).is_file():
        env["TF_CLI_CONFIG_FILE"] = os.devnull  # none to read: say so instead of a warning
    if data_dir is not None:
        env["TF_DATA_DIR"] = str(data_dir)
    return env


def copy_tree(destination: Path) -> Path:
    """A scratch copy of terraform/: init writes lock files next to the code, not in git."""
    shutil.copytree(
        TERRAFORM_DIR,
        destination,
        ignore=shutil.ignore_patterns(
            ".terraform", ".terraform.lock.hcl", "*.tfvars", "*.tfstate*"
        ),
    )
    return destination


def run_terraform(args: list[str], cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    terraform = require("terraform", TERRAFORM_FIX)
    return subprocess.run(  # noqa: S603 - fixed binary, arguments built here
        [terraform, *args, "-no-color"],
        cwd=cwd,
        env=terraform_env(data_dir),
        capture_output=True,
        text=True,
        check=False,
    )


def offline_init(config_dir: Path, data_dir: Path, mirror: Path) -> subprocess.CompletedProcess:
    return run_terraform(
        ["init", "-backend=false", "-input=false", f"-plugin-dir={mirror}"], config_dir, data_dir
    )


# --- checkov ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckovFailure:
    check: str
    resource: str
    file: str
    title: str


def run_checkov(directory: Path = TERRAFORM_DIR) -> tuple[list[CheckovFailure], int]:
    """checkov's terraform framework over the tree: (failures, passed count)."""
    with tempfile.TemporaryDirectory(prefix="tf-checkov-") as tmp:
        scanned = copy_tree(Path(tmp) / "terraform")
        parts = run_checkov_tool("terraform", "--directory", str(scanned))
    failures, passed = [], 0
    for part in parts:
        summary = part.get("summary", {})
        passed += summary.get("passed", 0)
        for failed in part["results"]["failed_checks"]:
            failures.append(
                CheckovFailure(
                    failed["check_id"],
                    failed["resource"],
                    failed["file_path"].lstrip("/"),
                    failed["check_name"],
                )
            )
    return failures, passed


def checkov_skips() -> dict[tuple[str, str], str]:
    """(check, resource) -> reason, from terraform/checkov-skips.yaml."""
    entries = yaml.safe_load(CHECKOV_SKIPS_FILE.read_text())
    return {
        (entry["check"], resource): entry["reason"]
        for entry in entries
        for resource in entry["resources"]
    }


# --- Provider schemas from the CDKTF packages ------------------------------------------

_DOC_LINK = re.compile(r"/docs/(resources|data-sources|ephemeral-resources)/\w+ (\w+)\}")
_ARGUMENT_LINK = re.compile(r"#([a-z0-9_]+) ")


def _jsii_assembly(requirement: str, workdir: Path) -> dict:
    """The .jsii type assembly inside a CDKTF provider wheel (downloaded with pip)."""
    subprocess.run(  # noqa: S603
        [
            uv(),
            "tool",
            "run",
            "--quiet",
            "pip",
            "download",
            "--no-deps",
            "-d",
            str(workdir),
            requirement,
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(workdir.glob(requirement.split("==")[0].replace("-", "_") + "-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        inner = next(name for name in archive.namelist() if name.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(archive.read(inner))) as tgz:
            return json.load(tgz.extractfile("package/.jsii"))


def _jsii_struct(types: dict, fqn: str, depth: int = 0) -> dict:
    """Arguments of a jsii struct: {name: {"required": bool, "nested"?: {...}}}."""
    arguments = {}
    for prop in types[fqn].get("properties", []):
        docs = prop.get("docs", {})
        link = _ARGUMENT_LINK.search(docs.get("remarks", "") + " " + docs.get("summary", ""))
        name = link.group(1) if link else re.sub(r"(?<!^)([A-Z])", r"_\1", prop["name"]).lower()
        argument = {"required": not prop.get("optional", False)}
        nested_fqn = _struct_fqn(prop["type"])
        if nested_fqn and nested_fqn in types and depth < 6:
            argument["nested"] = _jsii_struct(types, nested_fqn, depth + 1)
        arguments[name] = argument
    return arguments


def _jsii_attributes(definition: dict) -> list[str]:
    """Every attribute a resource class exposes (arguments and computed ones), snake_case."""
    names = {
        re.sub(r"(?<!^)([A-Z])", r"_\1", prop["name"]).lower()
        for prop in definition.get("properties", [])
        if not prop.get("static") and not prop["name"].endswith("Input")
    }
    return sorted(names)


def _struct_fqn(type_ref: dict) -> str | None:
    """The struct a property holds (directly, in a list, or in a union with IResolvable)."""
    if "fqn" in type_ref and not type_ref["fqn"].startswith("cdktf."):
        return type_ref["fqn"]
    if "collection" in type_ref:
        return _struct_fqn(type_ref["collection"]["elementtype"])
    for member in type_ref.get("union", {}).get("types", []):
        if found := _struct_fqn(member):
            return found
    return None


def jsii_schema(assembly: dict, wanted: dict[str, set[str]], provider: str) -> dict:
    """The wanted resource/data types (and the provider block) of one CDKTF assembly."""
    types = assembly["types"]
    kinds = {"resources": "resource", "data-sources": "data", "ephemeral-resources": "ephemeral"}
    schema: dict = {"resource": {}, "data": {}, "ephemeral": {}, "provider": {}, "attributes": {}}
    version = None
    for fqn, definition in types.items():
        summary = definition.get("docs", {}).get("summary", "")
        if definition.get("kind") != "class" or f"{fqn}Config" not in types:
            continue
        if match := _DOC_LINK.search(summary):
            kind, tf_type = kinds[match.group(1)], match.group(2)
            if tf_type in wanted.get(kind, set()):
                schema[kind][tf_type] = _jsii_struct(types, f"{fqn}Config")
                schema["attributes"].setdefault(kind, {})[tf_type] = _jsii_attributes(definition)
        elif fqn.endswith(".provider." + fqn.rsplit(".", 1)[1]) and "/docs " in summary:
            schema["provider"] = _jsii_struct(types, f"{fqn}Config")
            version = re.search(r"/providers/[\w-]+/[\w-]+/([0-9.]+)/docs", summary)
    schema["version"] = version.group(1) if version else None
    return schema


def _terraform_block_schema(block: dict) -> dict:
    arguments = {}
    for name, attribute in block.get("attributes", {}).items():
        if attribute.get("computed") and not (
            attribute.get("optional") or attribute.get("required")
        ):
            continue  # read-only
        argument = {"required": bool(attribute.get("required"))}
        if "nested_type" in attribute:
            argument["nested"] = _terraform_block_schema(attribute["nested_type"])
        arguments[name] = argument
    for name, nested in block.get("block_types", {}).items():
        arguments[name] = {
            "required": nested.get("min_items", 0) > 0,
            "nested": _terraform_block_schema(nested["block"]),
        }
    return arguments


def terraform_schema(provider_schemas: dict, wanted: dict[str, set[str]]) -> dict:
    """The wanted types from `terraform providers schema -json` of one provider."""
    sections = {
        "resource": "resource_schemas",
        "data": "data_source_schemas",
        "ephemeral": "ephemeral_resource_schemas",
    }
    schema = {
        kind: {
            tf_type: _terraform_block_schema(provider_schemas[section][tf_type]["block"])
            for tf_type in sorted(wanted.get(kind, set()))
        }
        for kind, section in sections.items()
    }
    schema["provider"] = _terraform_block_schema(provider_schemas["provider"]["block"])
    schema["attributes"] = {
        kind: {
            tf_type: sorted(
                set(provider_schemas[section][tf_type]["block"].get("attributes", {}))
                | set(provider_schemas[section][tf_type]["block"].get("block_types", {}))
            )
            for tf_type in sorted(wanted.get(kind, set()))
        }
        for kind, section in sections.items()
        if wanted.get(kind)
    }
    return schema


def used_types(only_schema_checked: bool = True) -> dict[str, dict[str, set[str]]]:
    """provider -> kind -> types used (aws only where no mirror-backed validate covers it)."""
    used: dict[str, dict[str, set[str]]] = {}
    for configuration in configurations():
        if only_schema_checked and configuration.aws_only:
            continue  # terraform validate checks these against the real provider
        for document in configuration.parsed():
            for kind in ("resource", "data", "ephemeral"):
                for block in document.get(kind, []):
                    for tf_type in block:
                        provider = tf_type.split("_", 1)[0]
                        if provider == "terraform":
                            continue  # built in (terraform_data)
                        used.setdefault(provider, {}).setdefault(kind, set()).add(tf_type)
            for block in document.get("provider", []):
                for provider in block:
                    used.setdefault(provider, {})
    return used


def build_schemas() -> dict:
    """The committed provider_schemas.json: only the types the configurations use."""
    used = used_types()
    schemas: dict = {}
    with tempfile.TemporaryDirectory(prefix="tf-schemas-") as tmp:
        for provider, wanted in sorted(used.items()):
            if provider == "aws":
                schemas[provider] = _aws_schema(wanted, Path(tmp) / "aws")
                continue
            assembly = _jsii_assembly(CDKTF_PACKAGES[provider], Path(tmp))
            schema = jsii_schema(assembly, wanted, provider)
            schema["source"] = CDKTF_PACKAGES[provider]
            schemas[provider] = schema
    return schemas


def _aws_schema(wanted: dict[str, set[str]], workdir: Path) -> dict:
    """hashicorp/aws types from the provider itself (mirror if present, else the registry)."""
    workdir.mkdir()
    (workdir / "main.tf").write_text(
        'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws", '
        'version = ">= 5.100, < 7.0" }\n  }\n}\n'
    )
    data_dir = workdir / ".data"
    mirror = provider_mirror()
    init_args = ["init", "-backend=false", "-input=false"]
    init_args += [f"-plugin-dir={mirror}"] if mirror else []
    if (result := run_terraform(init_args, workdir, data_dir)).returncode != 0:
        raise RuntimeError(f"terraform init for the aws schema failed:\n{result.stderr}")
    terraform = require("terraform", TERRAFORM_FIX)
    output = subprocess.run(  # noqa: S603
        [terraform, "providers", "schema", "-json"],
        cwd=workdir,
        env=terraform_env(data_dir),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (provider_schemas,) = json.loads(output)["provider_schemas"].values()
    version = run_terraform(["version", "-json"], workdir, data_dir).stdout
    schema = terraform_schema(provider_schemas, wanted)
    schema["version"] = json.loads(version)["provider_selections"][
        "registry.terraform.io/hashicorp/aws"
    ]
    schema["source"] = "terraform providers schema -json"
    return schema


# --- plan / apply ------------------------------------------------------------------------


def _stacks_for(stack: str) -> tuple[str, ...]:
    if not stack:
        return ENVIRONMENT_STACKS
    if stack not in STACKS:
        raise Exit(f"error: unknown stack {stack!r}; choose one of {', '.join(STACKS)}", code=2)
    return (stack,)


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise Exit(f"error: --{what} must be one of {', '.join(choices)} (got {value!r})", code=2)


def state_key(cloud: str, env: str, stack: str) -> str:
    """Where each stack keeps its state in the backend bucket."""
    return f"{cloud}/shared.tfstate" if stack == "shared" else f"{cloud}/{env}/{stack}.tfstate"


def var_file(cloud: str, env: str, stack: str) -> Path:
    return stack_dir(cloud, stack) / ("shared.tfvars" if stack == "shared" else f"{env}.tfvars")


def _preflight(cloud: str, env: str, stack: str) -> None:
    """Stop with one line per missing piece, each with its fix."""
    require("terraform", TERRAFORM_FIX)
    backend = TERRAFORM_DIR / cloud / "backend.hcl"
    if not backend.is_file():
        raise Exit(
            f"error: {backend.relative_to(REPO_ROOT)} is missing. Fix: copy backend.hcl.example "
            "next to it and name your state bucket (terraform/README.md, 'State').",
            code=1,
        )
    tfvars = var_file(cloud, env, stack)
    if not tfvars.is_file():
        raise Exit(
            f"error: {tfvars.relative_to(REPO_ROOT)} is missing. Fix: copy "
            f"{tfvars.name}.example next to it and fill it in.",
            code=1,
        )
    if cloud == "do" and not os.environ.get("DIGITALOCEAN_TOKEN"):
        raise Exit(
            "error: DIGITALOCEAN_TOKEN is not set. Fix: export an API token "
            "(https://docs.digitalocean.com/reference/api/create-personal-access-token/).",
            code=1,
        )
    if cloud == "do" and not os.environ.get("AWS_ACCESS_KEY_ID"):
        raise Exit(
            "error: AWS_ACCESS_KEY_ID is not set. Fix: export your Spaces access key and secret "
            "as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the state backend reads them).",
            code=1,
        )


def _run(c, args: list[str], workdir: Path, data_dir: Path):
    """terraform in a stack folder, echoed, with the environment's data dir."""
    terraform = require("terraform", TERRAFORM_FIX)
    command = shlex.join([terraform, f"-chdir={workdir}", *args])
    print(f"$ {command.replace(str(REPO_ROOT) + '/', '')}", flush=True)
    return c.run(command, env=terraform_env(data_dir), pty=sys.stdout.isatty())


def data_dir(cloud: str, env: str, stack: str) -> Path:
    """A stack's .terraform folder for one environment (the backend key differs, not the code)."""
    return stack_dir(cloud, stack) / ".terraform" / ("shared" if stack == "shared" else env)


def _plan_stack(c, cloud: str, env: str, stack: str, plan_file: Path, tmp: Path) -> None:
    _preflight(cloud, env, stack)
    workdir, stack_data = stack_dir(cloud, stack), data_dir(cloud, env, stack)
    backend = TERRAFORM_DIR / cloud / "backend.hcl"
    init = ["init", "-input=false", "-reconfigure", f"-backend-config={backend}"]
    init.append(f"-backend-config=key={state_key(cloud, env, stack)}")
    _run(c, init, workdir, stack_data)
    args = ["plan", "-input=false", f"-out={plan_file}", f"-var-file={var_file(cloud, env, stack)}"]
    if stack != "shared":
        args.append(f"-var=environment={env}")
    if stack == "apps":
        args.append(f"-var-file={_argocd_var_file(cloud, env, tmp)}")
    _run(c, args, workdir, stack_data)


def _argocd_var_file(cloud: str, env: str, tmp: Path) -> Path:
    """The rendered kustomize/argocd/<cloud>/<env> as a var file for the apps stack."""
    try:
        rendered = render(f"argocd/{cloud}/{env}")
    except RenderError as error:
        raise Exit(f"error: {error}", code=1) from error
    path = tmp / f"argocd-{cloud}-{env}.tfvars.json"
    path.write_text(json.dumps({"argocd_manifests_yaml": rendered}))
    return path


def _each_stack(c, cloud: str, env: str, stack: str, apply: bool, yes: bool) -> None:
    _check_choice(cloud, CLOUDS, "cloud")
    _check_choice(env, ENVIRONMENTS, "env")
    stacks = _stacks_for(stack)
    with tempfile.TemporaryDirectory(prefix="tf-plan-") as tmp_name:
        tmp = Path(tmp_name)
        for name in stacks:
            where = f"{cloud}/shared" if name == "shared" else f"{cloud}/{env}/{name}"
            print(f"\n=== {where} ===", flush=True)
            plan_file = tmp / f"{name}.tfplan"
            _plan_stack(c, cloud, env, name, plan_file, tmp)
            if not apply:
                continue
            if not yes and not confirm(f"Apply this plan to {where}?"):
                raise Exit(f"tf.apply: {where} not applied (answer was not yes)", code=1)
            _run(
                c,
                ["apply", "-input=false", str(plan_file)],
                stack_dir(cloud, name),
                data_dir(cloud, env, name),
            )


STACK_HELP = "one stack (shared, infra, tooling, apps); default: infra, tooling, apps in order"


@task(help={"cloud": "do or aws", "env": "stage or prod", "stack": STACK_HELP})
def plan(c, cloud, env, stack=""):
    """Show what Terraform would change in a cloud environment (one stack or all, in order)."""
    _each_stack(c, cloud, env, stack, apply=False, yes=False)


@task(
    help={
        "cloud": "do or aws",
        "env": "stage or prod",
        "stack": STACK_HELP,
        "yes": "apply without asking (CI)",
    }
)
def apply(c, cloud, env, stack="", yes=False):
    """Plan, confirm, then apply each stack of a cloud environment in order."""
    _each_stack(c, cloud, env, stack, apply=True, yes=yes)


@task(help={"check": "only report files that need formatting (exit 3 if any)"})
def fmt(c, check=False):
    """Format every .tf and .tftest.hcl file under terraform/ (terraform fmt -recursive)."""
    terraform = require("terraform", TERRAFORM_FIX)
    flags = "-check -diff " if check else ""
    c.run(f"{terraform} fmt {flags}-recursive {TERRAFORM_DIR}", env=terraform_env())


def _validate_one(
    configuration: Configuration, tree: Path, data_root: Path, registry: bool
) -> list[tuple[str, str, str]]:
    workdir = tree / configuration.name
    data_dir = data_root / configuration.name.replace("/", "-")
    mirror = provider_mirror()
    if registry:
        init = run_terraform(["init", "-backend=false", "-input=false"], workdir, data_dir)
    elif configuration.aws_only and mirror:
        init = offline_init(workdir, data_dir, mirror)
    else:
        return [(configuration.name, "init", "not run: needs the Terraform registry")]
    if init.returncode != 0:
        return [(configuration.name, "init", "FAILED\n" + init.stderr)]
    report = [(configuration.name, "init", "ok")]
    for step in ("validate", "test") if configuration.has_tests() else ("validate",):
        result = run_terraform([step], workdir, data_dir)
        failed = result.returncode != 0
        report.append(
            (
                configuration.name,
                step,
                "FAILED\n" + result.stdout + result.stderr if failed else "ok",
            )
        )
    return report


def validation_report(configs: list[Configuration], registry: bool) -> list[tuple[str, str, str]]:
    """(configuration, step, outcome) of init, validate and test for each configuration.

    Each runs on a scratch copy of terraform/ with its own data dir, several at a time.
    Without the registry only aws-only configurations can be initialised (from a provider
    mirror); the others are reported as not run and left to the schema checks of the tests.
    """
    with tempfile.TemporaryDirectory(prefix="tf-validate-") as tmp_name:
        tree = copy_tree(Path(tmp_name) / "terraform")
        data_root = Path(tmp_name) / "data"
        with ThreadPoolExecutor(max_workers=4) as pool:
            reports = pool.map(
                lambda configuration: _validate_one(configuration, tree, data_root, registry),
                configs,
            )
            return [line for report in reports for line in report]


@task(help={"offline": "use a local provider mirror (aws only) instead of the registry"})
def validate(c, offline=False):
    """terraform fmt -check, init + validate for every configuration, and terraform test."""
    fmt(c, check=True)
    failed = False
    for name, step, outcome in validation_report(configurations(), registry=not offline):
        print(f"{step:9} {name:40} {outcome}", flush=True)
        failed |= outcome.startswith("FAILED")
    if failed:
        raise Exit("tf.validate: failed", code=1)
    print("tf.validate: ok")


@task
def schemas(c):
    """Regenerate tests/terraform/provider_schemas.json from the providers' published schemas."""
    data = build_schemas()
    SCHEMAS_FILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    counts = {p: sum(len(data[p][k]) for k in ("resource", "data", "ephemeral")) for p in data}
    print(f"wrote {SCHEMAS_FILE.relative_to(REPO_ROOT)}: {counts}")


ns = Collection("tf")
ns.add_task(plan)
ns.add_task(apply)
ns.add_task(fmt)
ns.add_task(validate)
ns.add_task(schemas)
