"""Releases, the GitOps way: `invoke deploy`, `invoke rollback`, `invoke argocd.status`.

A release changes one thing: the `todo` image entry (newName, newTag = the commit SHA the
image was built from, digest) of an environment's overlay, in a commit pushed to the branch
that environment's Argo CD Application follows. Argo CD then syncs the cluster to it.

Which Application, overlay and branch belong to an environment is read from the rendered
kustomize/argocd/<cloud>/<env>, the objects Argo CD runs, so the two cannot drift: stage
follows `develop` and prod follows `main` (kustomize/argocd/base/source.yaml).

- `deploy --env stage` builds HEAD once (tag = its SHA), pushes it and pins its digest;
- `deploy --env prod` promotes the exact image stage runs, without a rebuild, and only when
  HEAD holds the code that image was built from;
- `rollback --env X` re-points the overlay at the image it ran before; the git history of
  the overlay file is the record.

Settings: the `release` section of invoke.yaml; INVOKE_RELEASE_<KEY> environment variables
override it (e.g. INVOKE_RELEASE_IMAGE_REPOSITORY_DO).
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import image, k8s
from ops.tf import (
    CLOUDS,
    ENVIRONMENTS,
    TERRAFORM_DIR,
    TERRAFORM_FIX,
    data_dir,
    stack_dir,
    state_key,
    terraform_env,
)
from ops.tools import REPO_ROOT, UV_FIX, confirm, require

STAGE, PROD = ENVIRONMENTS
# What the image is built from: two commits with the same inputs build the same image.
IMAGE_INPUTS = (*image.CONTEXT_FILES, "app")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
ECR_REGISTRY = re.compile(r"\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")
DOCR_REGISTRY = "registry.digitalocean.com"
REPOSITORY_PATTERNS = {
    "do": re.compile(rf"{re.escape(DOCR_REGISTRY)}/[a-z0-9-]+/[a-z0-9._/-]+"),
    "aws": re.compile(rf"{ECR_REGISTRY.pattern}/[a-z0-9._/-]+"),
}
POLL_SECONDS = 5
ROLLED_BACK_FROM = "Rolled-back-from"  # commit trailer naming the image a rollback replaced

CLOUD_CLI = {"do": "doctl", "aws": "aws"}
FIXES = {
    "git": "install git (https://git-scm.com/downloads)",
    "docker": image.DOCKER_FIX,
    "doctl": "install doctl (https://docs.digitalocean.com/reference/doctl/how-to/install/)",
    "aws": "install the AWS CLI v2 "
    "(https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)",
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/); "
    "--wait reads the Argo CD Application with it",
    "terraform": TERRAFORM_FIX,
    "uv": UV_FIX,
}

# The `release` section of invoke.yaml, which documents each key.
DEFAULTS = {
    "cloud": "do",
    "remote": "origin",
    "image_repository": {"do": "", "aws": ""},
    "platforms": image.PUSH_PLATFORMS,
    "cluster_name": "todo-{env}",
    "test_command": "uv run invoke test",
    "cache_from": "",
    "cache_to": "",
}


def setting(c, key: str, cloud: str = ""):
    """release.<key> from invoke's config (release.<key>.<cloud> if given), else the default."""
    value = (c.config.get("release") or {}).get(key, DEFAULTS[key])
    return value.get(cloud, "") if cloud else value


# --- Environments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    """A cloud environment as its Argo CD Application describes it."""

    cloud: str
    name: str
    application: str
    argocd_namespace: str
    repo_url: str
    branch: str
    overlay_dir: str  # relative to the repository root
    cluster: str
    remote: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.cloud})"

    @property
    def overlay_file(self) -> str:
        return f"{self.overlay_dir}/kustomization.yaml"

    @property
    def overlay(self) -> Path:
        return REPO_ROOT / self.overlay_file

    @property
    def tracking(self) -> str:
        return f"{self.remote}/{self.branch}"

    @property
    def options(self) -> str:
        return f"--env {self.name} --cloud {self.cloud}"


def environment(c, env: str, cloud: str) -> Environment:
    """The environment's Application, overlay and branch, from kustomize/argocd/<cloud>/<env>."""
    if env not in ENVIRONMENTS:
        raise Exit(f"error: --env must be one of {', '.join(ENVIRONMENTS)} (got {env!r})", code=2)
    if cloud not in CLOUDS:
        raise Exit(
            f"error: --cloud must be one of {', '.join(CLOUDS)} (got {cloud!r}); "
            "release.cloud in invoke.yaml sets the default",
            code=2,
        )
    try:
        docs = k8s.documents(k8s.render(f"argocd/{cloud}/{env}"))
    except k8s.RenderError as error:
        raise Exit(f"error: {error}", code=1) from None
    (application,) = (doc for doc in docs if doc["kind"] == "Application")
    source = application["spec"]["source"]
    return Environment(
        cloud=cloud,
        name=env,
        application=application["metadata"]["name"],
        argocd_namespace=application["metadata"]["namespace"],
        repo_url=source["repoURL"],
        branch=source["targetRevision"],
        overlay_dir=source["path"],
        cluster=setting(c, "cluster_name").format(env=env, cloud=cloud),
        remote=setting(c, "remote"),
    )


# --- The overlay's image entry ---------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"

    @property
    def short(self) -> str:
        return f"{image.IMAGE_NAME} {self.tag[:12]}"

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def is_release(self) -> bool:
        """Tagged with a commit and pinned by digest: what deploy records."""
        return bool(image.COMMIT_SHA.fullmatch(self.tag) and DIGEST.fullmatch(self.digest))


def image_entry(kustomization: str) -> ImageRef | None:
    """The overlay's `todo` image entry, or None when it has none."""
    for entry in yaml.safe_load(kustomization).get("images") or []:
        if entry.get("name") == image.IMAGE_NAME:
            return ImageRef(
                str(entry.get("newName", "")),
                str(entry.get("newTag", "")),
                str(entry.get("digest", "")),
            )
    return None


_KEY_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<dash>- )?(?P<key>[A-Za-z]+):\s*(?P<value>.*?)(?P<comment>\s+#.*)?\s*$"
)


def _scalar(value: str) -> str:
    """A YAML scalar that reads back as this string (a tag of digits only needs quotes)."""
    return value if yaml.safe_load(value) == value else json.dumps(value)


def _list_entries(lines: list[str]) -> list[list[int]]:
    """Line numbers of each entry of the top-level block-style `images:` list."""
    start = next((i for i, line in enumerate(lines) if re.match(r"images:\s*(#.*)?$", line)), None)
    if start is None:
        raise ValueError("it has no block-style `images:` list")
    entries: list[list[int]] = []
    for number in range(start + 1, len(lines)):
        line = lines[number]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace() and not line.startswith("- "):
            break  # the next top-level key
        if re.match(r"\s*- ", line):
            entries.append([])
        if entries:
            entries[-1].append(number)
    return entries


def set_image(kustomization: str, ref: ImageRef) -> str:
    """The kustomization with its `todo` image entry set to `ref`, and nothing else changed.

    Same result as `kustomize edit set image todo=REPOSITORY:TAG@DIGEST`, but comments and
    layout stay, so a release's diff is the entry's newTag and digest lines (and newName
    when the repository changes).
    """
    lines = kustomization.splitlines(keepends=True)
    for entry in _list_entries(lines):
        keys = {match["key"]: n for n in entry if (match := _KEY_LINE.match(lines[n]))}
        name = _KEY_LINE.match(lines[keys["name"]])["value"] if "name" in keys else ""
        if name != image.IMAGE_NAME:
            continue
        first = _KEY_LINE.match(lines[entry[0]])
        indent = first["indent"] + ("  " if first["dash"] else "")
        last = max(keys.values())
        for key, value in (
            ("newName", ref.repository),
            ("newTag", ref.tag),
            ("digest", ref.digest),
        ):
            if key in keys:
                match = _KEY_LINE.match(lines[keys[key]])
                prefix, comment = match["indent"] + (match["dash"] or ""), match["comment"] or ""
                lines[keys[key]] = f"{prefix}{key}: {_scalar(value)}{comment}\n"
            else:
                last += 1
                lines.insert(last, f"{indent}{key}: {_scalar(value)}\n")
        edited = "".join(lines)
        _check_only_the_entry_changed(kustomization, edited, ref)
        return edited
    raise ValueError(f"its `images:` list has no entry named {image.IMAGE_NAME}")


def _check_only_the_entry_changed(before: str, after: str, ref: ImageRef) -> None:
    old, new = yaml.safe_load(before), yaml.safe_load(after)
    for document in (old, new):
        document["images"] = [e for e in document["images"] if e.get("name") != image.IMAGE_NAME]
    if old != new or image_entry(after) != ref:
        raise ValueError("the edit would change more than the image entry")


def rendered_images(env: Environment, kustomization: str) -> set[str]:
    """Every container image of the overlay rendered with `kustomization` in its place.

    Renders a scratch copy of kustomize/, so the repository stays untouched (dry runs too).
    """
    with tempfile.TemporaryDirectory(prefix="todo-render-") as tmp:
        copy = Path(tmp) / "kustomize"
        shutil.copytree(k8s.KUSTOMIZE_DIR, copy)
        overlay_dir = copy / Path(env.overlay_dir).relative_to(k8s.KUSTOMIZE_DIR.name)
        (overlay_dir / "kustomization.yaml").write_text(kustomization)
        result = subprocess.run(  # noqa: S603 - the renderer ops.k8s chose, on a scratch copy
            [*k8s.renderer(), str(overlay_dir)], capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        raise Exit(f"error: the edited overlay does not render:\n{result.stderr.strip()}", code=1)
    images = set()
    for doc in k8s.documents(result.stdout):
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            images.add(container["image"])
    return images


# --- Output and commands ---------------------------------------------------------------------


class Progress:
    """Numbered steps; each command echoed as it runs, or as it would run in a dry run."""

    def __init__(self, title: str, steps: tuple[str, ...], dry_run: bool):
        self.steps, self.dry_run = steps, dry_run
        print(title + ("  (dry run: nothing will change)" if dry_run else ""), flush=True)

    def step(self, name: str) -> None:
        print(f"[{self.steps.index(name) + 1}/{len(self.steps)}] {name}", flush=True)

    @staticmethod
    def ok(text: str) -> None:
        print(f"      ok  {text}", flush=True)

    @staticmethod
    def note(text: str) -> None:
        print(f"      {text}", flush=True)

    def command(self, command: str, change: bool = False) -> None:
        program, _, args = command.partition(" ")
        shown = f"{Path(program).name} {args}".replace(f"{REPO_ROOT}/", "")
        shown = shown.replace(str(REPO_ROOT), ".")
        would = change and self.dry_run
        print(f"      {'would run:' if would else '$'} {shown}", flush=True)


def run(c, progress: Progress, args: list[str], change: bool = False, **kwargs):
    """Run a command, echoed; one that changes something is only echoed in a dry run (None)."""
    progress.command(shlex.join(args), change)
    if change and progress.dry_run:
        return None
    kwargs.setdefault("hide", True)
    kwargs.setdefault("in_stream", False)
    return c.run(shlex.join(args), warn=True, **kwargs)


def run_git(c, progress: Progress, *args: str, change: bool = False):
    """git in the repository, echoed as `git ARGS`; a change only echoed in a dry run."""
    progress.command(shlex.join(["git", *args]), change)
    if change and progress.dry_run:
        return None
    return c.run(
        shlex.join(["git", "-C", str(REPO_ROOT), *args]), hide=True, warn=True, in_stream=False
    )


def said(result) -> str:
    """What a failed command (invoke's or subprocess's result) said, in one line: its first
    error line, else its last line."""
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
    errors = [line for line in lines if re.match(r"(fatal|error|ERROR|Error)\b", line)]
    code = getattr(result, "exited", getattr(result, "returncode", "?"))
    return (errors or lines or [f"exit {code}"])[0 if errors else -1]


def git(*args: str) -> str:
    """git in the repository, not echoed: its output, or stop with what git said."""
    result = subprocess.run(  # noqa: S603 - git, with arguments built here
        ["git", "-C", str(REPO_ROOT), *args],  # noqa: S607 - git from PATH, as everywhere
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise Exit(f"error: git {' '.join(args)}: {said(result)}", code=1)
    return result.stdout.strip()


def require_all(tools: list[str]) -> None:
    """Stop with one line per missing tool, each with its fix."""
    missing = []
    for tool in dict.fromkeys(tools):
        try:
            require(tool, FIXES.get(tool, "install it"))
        except Exit as error:
            missing.append(error.message)
    if missing:
        raise Exit("\n".join(missing), code=127)


# --- Preflight ---------------------------------------------------------------------------------


def check_tree(c, env: Environment, progress: Progress) -> str:
    """A clean tree on the environment's branch, level with the remote: HEAD's SHA."""
    if changes := image.uncommitted_changes(c):
        listed = ", ".join(line[3:] for line in changes[:5])
        raise Exit(
            f"error: the working tree has uncommitted changes ({listed}); a release ships "
            "commits only. Fix: commit or stash them",
            code=1,
        )
    branch = git("branch", "--show-current")
    if branch != env.branch:
        raise Exit(
            f"error: {env.label} deploys from {env.branch}, the branch its Argo CD Application "
            f"follows, but HEAD is {f'on {branch}' if branch else 'detached'}. "
            f"Fix: git switch {env.branch}",
            code=1,
        )
    fetch(c, env, progress)
    head, remote = git("rev-parse", "HEAD"), git("rev-parse", env.tracking)
    if head != remote:
        ahead = git("rev-list", "--count", f"{env.tracking}..HEAD")
        behind = git("rev-list", "--count", f"HEAD..{env.tracking}")
        raise Exit(
            f"error: {env.branch} is {ahead} commit(s) ahead of {env.tracking} and {behind} "
            "behind; a release ships what the remote has. Fix: git pull --rebase, git push, "
            "then run again",
            code=1,
        )
    check_repository(c, env)
    progress.ok(f"clean tree on {env.branch}, level with {env.tracking} at {head[:12]}")
    return head


def fetch(c, env: Environment, progress: Progress) -> None:
    result = run_git(c, progress, "fetch", "--quiet", env.remote, env.branch)
    if result.failed:
        raise Exit(f"error: cannot fetch {env.tracking}: {said(result)}", code=1)


def _repository_id(url: str) -> str:
    """host/owner/name of a git URL in any form (https, ssh, scp-like), or a local path."""
    url = url.strip().removesuffix("/").removesuffix(".git")
    if match := re.fullmatch(r"(?:ssh://)?[^@/]+@([^:/]+)[:/](.+)", url):
        return f"{match[1].lower()}/{match[2]}"
    if match := re.fullmatch(r"(?:https?|git)://(?:[^@/]+@)?([^/]+)/(.+)", url):
        return f"{match[1].lower()}/{match[2]}"
    return str(Path(url.removeprefix("file://")).resolve())


def check_repository(c, env: Environment) -> None:
    """The remote a release pushes to is the repository Argo CD pulls from."""
    pushed = git("remote", "get-url", env.remote)
    if _repository_id(pushed) != _repository_id(env.repo_url):
        raise Exit(
            f"error: Argo CD ({env.application}) pulls {env.repo_url}, but `{env.remote}` is "
            f"{pushed}, so a release commit would never reach it. Fix: set repoURL in "
            "kustomize/argocd/base/source.yaml to this repository",
            code=1,
        )


def check_credentials(c, cloud: str, progress: Progress) -> None:
    """The cloud CLI acts for someone (read-only, so dry runs check it too)."""
    if cloud == "do":
        args = ["doctl", "account", "get", "--format", "Email", "--no-header"]
        fix = (
            "export DIGITALOCEAN_ACCESS_TOKEN (https://docs.digitalocean.com/reference/api/"
            "create-personal-access-token/) or run `doctl auth init`"
        )
    else:
        args = ["aws", "sts", "get-caller-identity", "--output", "json"]
        fix = "run `aws sso login` or `aws configure` (CI assumes AWS_DEPLOY_ROLE_ARN by OIDC)"
    result = run(c, progress, args)
    if result.failed:
        raise Exit(
            f"error: {CLOUD_CLI[cloud]} has no working credentials ({said(result)}). Fix: {fix}",
            code=1,
        )
    who = result.stdout.strip()
    progress.ok(f"{CLOUD_CLI[cloud]} acts as {json.loads(who)['Arn'] if cloud == 'aws' else who}")


def image_repository(c, cloud: str, progress: Progress) -> str:
    """Where stage's images go: invoke.yaml, else the output of terraform's shared stack."""
    if configured := setting(c, "image_repository", cloud):
        repository, source = configured, f"release.image_repository.{cloud}"
    else:
        repository, source = _terraform_image_repository(c, cloud, progress), "terraform output"
    if not REPOSITORY_PATTERNS[cloud].fullmatch(repository):
        raise Exit(
            f"error: {repository!r} ({source}) is not a {cloud.upper()} image repository. Fix: "
            f"set release.image_repository.{cloud} in invoke.yaml to the `image_repository` "
            f"output of terraform/{cloud}/stacks/shared",
            code=1,
        )
    progress.ok(f"image repository {repository} ({source})")
    return repository


def _terraform_image_repository(c, cloud: str, progress: Progress) -> str:
    backend = TERRAFORM_DIR / cloud / "backend.hcl"
    if not backend.is_file():
        raise Exit(
            f"error: no image repository for {cloud}. Fix: set release.image_repository.{cloud} "
            f"in invoke.yaml to the `image_repository` output of terraform/{cloud}/stacks/"
            f"shared, or create {backend.relative_to(REPO_ROOT)} so deploy can read that output",
            code=1,
        )
    require_all(["terraform"])
    workdir = stack_dir(cloud, "shared")
    env = terraform_env(data_dir(cloud, STAGE, "shared"))
    init = ["terraform", f"-chdir={workdir}", "init", "-input=false", "-reconfigure"]
    init += [f"-backend-config={backend}", f"-backend-config=key={state_key(cloud, '', 'shared')}"]
    output = ["terraform", f"-chdir={workdir}", "output", "-raw", "image_repository"]
    for args in (init, output):
        if (result := run(c, progress, args, env=env)).failed:
            raise Exit(f"error: terraform {args[2]} in {workdir.name}: {said(result)}", code=1)
    return result.stdout.strip()


# --- Registry ----------------------------------------------------------------------------------


def registry_login(c, registry: str, progress: Progress) -> None:
    """Short-lived Docker CLI credentials for DOCR (doctl) or ECR (aws)."""
    if registry == DOCR_REGISTRY:
        args = ["doctl", "registry", "login", "--expiry-seconds", "1800"]
        result = run(c, progress, args, change=True)
    elif match := ECR_REGISTRY.fullmatch(registry):
        get_password = ["aws", "ecr", "get-login-password", "--region", match[1]]
        login = ["docker", "login", "--username", "AWS", "--password-stdin", registry]
        progress.command(f"{shlex.join(get_password)} | {shlex.join(login)}", change=True)
        if progress.dry_run:
            return
        password = c.run(shlex.join(get_password), hide=True, warn=True, in_stream=False)
        if password.failed:
            raise Exit(f"error: aws ecr get-login-password: {said(password)}", code=1)
        stdin = io.StringIO(password.stdout)
        result = c.run(shlex.join(login), hide=True, warn=True, in_stream=stdin)
    else:
        progress.note(f"{registry} is neither DOCR nor ECR: using the Docker CLI's own login")
        return
    if result is not None and result.failed:
        raise Exit(f"error: cannot log in to {registry}: {said(result)}", code=1)


def check_in_registry(c, ref: ImageRef, progress: Progress) -> None:
    """The registry still holds the tag, at the recorded digest."""
    reference = f"{ref.repository}:{ref.tag}"
    progress.command(shlex.join(image.inspect_command(reference)), change=progress.dry_run)
    if progress.dry_run:
        return
    digest = image.remote_digest(c, reference)
    if digest != ref.digest:
        now = f"now points at {digest}" if digest else "is gone"
        raise Exit(f"error: {reference} {now}, not the recorded {ref.digest}", code=1)
    progress.ok(f"the registry holds {reference} at the recorded digest")


# --- The release commit ------------------------------------------------------------------------


def prepare_overlay(env: Environment, ref: ImageRef, progress: Progress) -> str:
    """The overlay pointing at `ref`, shown as a diff and proven to render (not yet written)."""
    before = env.overlay.read_text()
    try:
        after = set_image(before, ref)
    except ValueError as error:
        raise Exit(f"error: cannot edit {env.overlay_file}: {error}", code=1) from None
    diff = difflib.unified_diff(
        before.splitlines(), after.splitlines(), f"a/{env.overlay_file}", f"b/{env.overlay_file}"
    )
    for line in diff:
        progress.note(line.rstrip())
    images = rendered_images(env, after)
    if images != {str(ref)}:
        raise Exit(f"error: the edited overlay renders {sorted(images)}, not only {ref}", code=1)
    progress.ok(f"every workload of the rendered overlay runs {ref.short}")
    return after


def commit_message(subject: str, env: Environment, ref: ImageRef, **trailers: str) -> str:
    """Subject, then trailers naming the environment, tag and digest (git log --grep finds them)."""
    lines = [subject, "", f"Environment: {env.cloud}/{env.name}", f"Image: {ref}"]
    lines += [f"Image-Tag: {ref.tag}", f"Image-Digest: {ref.digest}"]
    lines += [f"{key}: {value}" for key, value in trailers.items()]
    return "\n".join(lines)


def commit_and_push(c, env: Environment, overlay: str, message: str, progress: Progress) -> str:
    """Write and commit the overlay alone, push it to the environment's branch: the commit."""
    if not progress.dry_run:
        env.overlay.write_text(overlay)
    run_git(c, progress, "add", env.overlay_file, change=True)
    progress.command(f"git commit -m {shlex.quote(message.partition(chr(10))[0])} ...", change=True)
    for line in message.splitlines()[2:]:
        progress.note(f"    {line}")
    push = ("push", env.remote, f"HEAD:refs/heads/{env.branch}")
    if progress.dry_run:
        progress.command(shlex.join(["git", *push]), change=True)
        return ""
    git("add", "--", env.overlay_file)
    git("commit", "--quiet", "-m", message, "--", env.overlay_file)
    if run_git(c, progress, *push, change=True).failed:
        # Someone pushed meanwhile: put the release commit on top of theirs, once.
        progress.note(f"{env.tracking} moved on; rebasing the release commit onto it")
        rebased = run_git(c, progress, "pull", "--rebase", "--quiet", env.remote, env.branch)
        if rebased.failed:
            with contextlib.suppress(Exit):
                git("rebase", "--abort")
            raise Exit(
                f"error: cannot rebase the release commit onto {env.tracking} ({said(rebased)}); "
                "it is committed here, not pushed. Fix: git pull --rebase, resolve, git push",
                code=1,
            )
        if (pushed := run_git(c, progress, *push, change=True)).failed:
            raise Exit(f"error: git push: {said(pushed)}", code=1)
    commit = git("rev-parse", "HEAD")
    progress.ok(f"pushed {commit[:12]} to {env.tracking}; Argo CD syncs from there")
    return commit


def image_input_changes(commit: str, other: str = "HEAD") -> list[str]:
    """Image inputs that differ between two commits; empty when both build the same image."""
    try:
        return git("diff", "--name-only", commit, other, "--", *IMAGE_INPUTS).splitlines()
    except Exit:
        return [f"everything (commit {commit[:12]} is not in this repository)"]


# --- Argo CD -----------------------------------------------------------------------------------


@contextlib.contextmanager
def cluster_access(c, env: Environment, progress: Progress) -> Iterator[dict[str, str]]:
    """Credentials for the environment's cluster in a throwaway kubeconfig: KUBECONFIG."""
    with tempfile.TemporaryDirectory(prefix="todo-kube-") as tmp:
        kube = {"KUBECONFIG": str(Path(tmp) / "config")}
        if env.cloud == "do":
            args = ["doctl", "kubernetes", "cluster", "kubeconfig", "save", env.cluster]
            args += ["--expiry-seconds", "3600"]
        else:
            args = ["aws", "eks", "update-kubeconfig", "--name", env.cluster]
            args += ["--region", _aws_region(env), "--kubeconfig", kube["KUBECONFIG"]]
        if (result := run(c, progress, args, env=kube)).failed:
            raise Exit(
                f"error: no credentials for cluster {env.cluster} ({said(result)}). Fix: check "
                "that it exists, and release.cluster_name in invoke.yaml",
                code=1,
            )
        yield kube


def _aws_region(env: Environment) -> str:
    """Where the cluster is: the region of the overlay's ECR repository (terraform puts both)."""
    ref = image_entry(env.overlay.read_text())
    if ref and (match := ECR_REGISTRY.fullmatch(ref.registry)):
        return match[1]
    raise Exit(f"error: {env.overlay_file} names no ECR repository ({ref}) to find the region")


def kubectl(env: Environment, *args: str) -> list[str]:
    return ["kubectl", "--namespace", env.argocd_namespace, *args]


def read_application(c, env: Environment, kube: dict[str, str]) -> AppState:
    args = kubectl(env, "get", "application", env.application, "--output", "json")
    result = c.run(shlex.join(args), env=kube, hide=True, warn=True, in_stream=False)
    if result.failed:
        raise Exit(f"error: cannot read Application {env.application}: {said(result)}", code=1)
    return AppState.of(json.loads(result.stdout))


@dataclass(frozen=True)
class AppState:
    """What an Argo CD Application reports about itself."""

    sync: str
    revision: str
    health: str
    operation: str
    operation_message: str
    operation_revision: str
    images: tuple[str, ...]
    unhealthy: tuple[str, ...]

    @classmethod
    def of(cls, application: dict) -> AppState:
        status = application.get("status", {})
        operation = status.get("operationState", {})
        return cls(
            sync=status.get("sync", {}).get("status", "Unknown"),
            revision=status.get("sync", {}).get("revision", ""),
            health=status.get("health", {}).get("status", "Unknown"),
            operation=operation.get("phase", ""),
            operation_message=operation.get("message", ""),
            operation_revision=operation.get("syncResult", {}).get("revision", ""),
            images=tuple(status.get("summary", {}).get("images", [])),
            unhealthy=tuple(
                f"{r['kind']}/{r['name']} {r['health']['status']}"
                + (f" ({r['health']['message']})" if r["health"].get("message") else "")
                for r in status.get("resources", [])
                if r.get("health", {}).get("status", "Healthy") != "Healthy"
            ),
        )

    def runs(self, ref: ImageRef) -> bool:
        """Synced, healthy, no sync in progress, and the live workloads use `ref`."""
        settled = self.operation not in ("Running", "Terminating")
        return (
            str(ref) in self.images
            and self.sync == "Synced"
            and self.health == "Healthy"
            and settled
        )

    def failure(self, commit: str) -> str:
        """Why Argo CD's sync of `commit` failed, if it did."""
        if self.operation_revision == commit and self.operation in ("Failed", "Error"):
            return self.operation_message or self.operation
        return ""

    def summary(self, ref: ImageRef) -> str:
        operation = f", last sync {self.operation}" if self.operation else ""
        running = "runs" if str(ref) in self.images else "does not run yet"
        return (
            f"{self.sync} at {self.revision[:12] or '?'}, {self.health}{operation}; "
            f"{running} {ref.short}"
        )


def wait_for_rollout(
    c, env: Environment, ref: ImageRef, commit: str, timeout: int, progress: Progress
) -> None:
    """Until Argo CD reports `ref` synced and healthy; stop at a failed sync or the timeout."""
    with cluster_access(c, env, progress) as kube:
        # Argo CD polls Git every few minutes; this annotation makes it look now.
        refresh = ["annotate", "application", env.application]
        refresh += ["argocd.argoproj.io/refresh=normal", "--overwrite"]
        if (result := run(c, progress, kubectl(env, *refresh), env=kube)).failed:
            raise Exit(f"error: cannot reach Application {env.application}: {said(result)}", code=1)
        get = kubectl(env, "get", "application", env.application, "--output", "json")
        progress.command(f"{shlex.join(get)}   # every {POLL_SECONDS} s, for up to {timeout} s")
        deadline, last = time.monotonic() + timeout, ""
        while True:
            state = read_application(c, env, kube)
            if (summary := state.summary(ref)) != last:
                progress.note(summary)
                last = summary
            if failure := state.failure(commit):
                raise Exit(
                    f"error: Argo CD failed to sync {ref.short} to {env.label}: {failure}. "
                    f"See `invoke argocd.status {env.options}`; `invoke rollback {env.options}` "
                    "restores the previous image",
                    code=1,
                )
            if state.runs(ref):
                progress.ok(f"{env.application} is Synced and Healthy with {ref.short}")
                return
            if time.monotonic() >= deadline:
                why = "; ".join(state.unhealthy[:5]) or "no resource reports a problem"
                raise Exit(
                    f"error: {env.application} did not run {ref.short} Synced and Healthy within "
                    f"{timeout} s (last: {last}; {why}). Fix: look at `invoke argocd.status "
                    f"{env.options}`; `invoke rollback {env.options}` restores the previous image",
                    code=1,
                )
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def rollout(
    c, env: Environment, ref: ImageRef, commit: str, wait: bool, timeout: int, progress: Progress
) -> None:
    """The last step: wait for Argo CD with --wait, else say how to watch it."""
    progress.step("Rollout")
    if not wait:
        progress.note(f"not waiting (pass --wait); watch it: invoke argocd.status {env.options}")
    elif progress.dry_run:
        what = f"wait up to {timeout} s for {env.application} to run {ref.short}"
        progress.command(f"{what}, Synced and Healthy", change=True)
    else:
        wait_for_rollout(c, env, ref, commit, timeout, progress)


# --- Tasks -------------------------------------------------------------------------------------

HELP = {
    "env": "stage (build HEAD, push, deploy) or prod (promote the image stage runs)",
    "cloud": "do or aws (default: release.cloud in invoke.yaml)",
    "skip_tests": "do not run the test suite first (CI ran it in an earlier job)",
    "wait": "wait until Argo CD reports the image Synced and Healthy",
    "timeout": "seconds --wait waits (default 600)",
    "dry_run": "print every command and the overlay change, and change nothing",
    "yes": "do not ask before changing prod (in CI the GitHub environment approves)",
}


def preflight(c, env: Environment, progress: Progress, wait: bool, build=False, extra=()) -> str:
    """Tools, git state, Docker (its engine too if building) and cloud credentials: HEAD."""
    tools = ["git", "docker", CLOUD_CLI[env.cloud], *(["kubectl"] if wait else []), *extra]
    require_all(tools)
    head = check_tree(c, env, progress)
    engine = f"Docker engine {image.engine_version(c)}, " if build else ""
    image.ensure_buildx(c)
    progress.ok(f"{engine}docker buildx")
    check_credentials(c, env.cloud, progress)
    return head


@task(help=HELP, positional=[])
def deploy(c, env, cloud="", skip_tests=False, wait=False, timeout=600, dry_run=False, yes=False):
    """Ship HEAD to stage (built once, pinned by digest), or promote stage's image to prod."""
    target = environment(c, env, cloud or setting(c, "cloud"))
    if env == STAGE:
        _deploy_stage(c, target, skip_tests, wait, int(timeout), dry_run)
    else:
        _promote(c, target, wait, int(timeout), dry_run, yes)


STAGE_STEPS = ("Preflight", "Tests", "Image", "Overlay", "Commit and push", "Rollout")


def _deploy_stage(c, env: Environment, skip_tests, wait, timeout, dry_run) -> None:
    progress = Progress(f"deploy {env.label}: HEAD of {env.branch}", STAGE_STEPS, dry_run)
    progress.step("Preflight")
    test_command = shlex.split(setting(c, "test_command"))
    tests = [] if skip_tests else test_command[:1]
    head = preflight(c, env, progress, wait, build=True, extra=tests)
    repository = image_repository(c, env.cloud, progress)
    current = image_entry(env.overlay.read_text())
    if current and current.is_release and not image_input_changes(current.tag):
        inputs = ", ".join(IMAGE_INPUTS)
        progress.ok(
            f"nothing to deploy: {env.label} runs {current.short}, built from HEAD's {inputs}"
        )
        return

    progress.step("Tests")
    if skip_tests:
        progress.note("skipped (--skip-tests)")
    elif (result := run(c, progress, test_command, change=True, hide=False)) is not None and (
        result.failed  # (an invoke Result is falsy when it failed: compare with None)
    ):
        raise Exit(
            f"error: the tests failed; nothing was deployed. Fix: make "
            f"`{shlex.join(test_command)}` pass (or pass --skip-tests when CI ran them already)",
            code=1,
        )

    progress.step("Image")
    platforms, cache_from, cache_to = (
        setting(c, k) for k in ("platforms", "cache_from", "cache_to")
    )
    registry_login(c, ImageRef(repository, head, "").registry, progress)
    if dry_run:
        reference = f"{repository}:{head}"
        progress.command(shlex.join(image.inspect_command(reference)), change=True)
        push = image.push_command(c, reference, Path("METADATA"), platforms, cache_from, cache_to)
        progress.command(f"{shlex.join(push)}   # unless the registry has the tag", change=True)
        ref = ImageRef(repository, head, "sha256:" + "0" * 64)
        progress.note(f"(the overlay below shows {ref.digest[:14]}… where the pushed digest goes)")
    else:
        tag, digest, built = image.publish(
            c, repository, platforms, cache_from, cache_to, echo=progress.command
        )
        ref = ImageRef(repository, tag, digest)
        progress.ok(
            f"{'pushed' if built else 'in the registry already (built once per commit)'}: {ref}"
        )

    progress.step("Overlay")
    overlay = prepare_overlay(env, ref, progress)

    progress.step("Commit and push")
    message = commit_message(f"Deploy {ref.short} to {env.label}", env, ref)
    commit = commit_and_push(c, env, overlay, message, progress)
    rollout(c, env, ref, commit, wait, timeout, progress)
    print(f"\n{'Would deploy' if dry_run else 'Deployed'} {ref} to {env.label}.")


PROMOTE_STEPS = ("Preflight", "Stage's image", "Registry", "Overlay", "Commit and push", "Rollout")


def _promote(c, env: Environment, wait, timeout, dry_run, yes) -> None:
    progress = Progress(f"deploy {env.label}: promote the image stage runs", PROMOTE_STEPS, dry_run)
    progress.step("Preflight")
    head = preflight(c, env, progress, wait)

    progress.step("Stage's image")
    stage = environment(c, STAGE, env.cloud)
    fetch(c, stage, progress)
    ref = image_entry(git("show", f"{stage.tracking}:{stage.overlay_file}"))
    if ref is None or not ref.is_release:
        raise Exit(
            f"error: {stage.tracking} records no deployed image for {stage.label} ({ref}). "
            f"Fix: invoke deploy {stage.options}",
            code=1,
        )
    progress.ok(f"{stage.label} runs {ref} ({stage.tracking})")
    if differing := image_input_changes(ref.tag, head):
        raise Exit(
            f"error: {stage.label} does not run this commit: its image was built from "
            f"{ref.tag[:12]}, and HEAD ({head[:12]}) differs in {', '.join(differing[:8])}. "
            f"Fix: deploy this code to stage first (merge it into {stage.branch}), then promote",
            code=1,
        )
    progress.ok(f"HEAD holds the code {ref.short} was built from: promoting it, no rebuild")
    if image_entry(env.overlay.read_text()) == ref:
        progress.ok(f"nothing to promote: {env.label} runs {ref.short} already")
        return

    progress.step("Registry")
    registry_login(c, ref.registry, progress)
    check_in_registry(c, ref, progress)

    progress.step("Overlay")
    overlay = prepare_overlay(env, ref, progress)
    if not (dry_run or yes or confirm(f"Promote {ref} to {env.label}?")):
        raise Exit(f"deploy: {env.label} unchanged (the answer was not yes)", code=1)

    progress.step("Commit and push")
    promoted_from = {"Promoted-from": f"{stage.cloud}/{stage.name}"}
    message = commit_message(f"Promote {ref.short} to {env.label}", env, ref, **promoted_from)
    commit = commit_and_push(c, env, overlay, message, progress)
    rollout(c, env, ref, commit, wait, timeout, progress)
    print(f"\n{'Would promote' if dry_run else 'Promoted'} {ref} to {env.label}.")


@dataclass(frozen=True)
class Record:
    """One recorded image of an overlay: a commit that changed the file."""

    commit: str
    date: str
    ref: ImageRef
    rolled_back_from: str


def history(c, env: Environment) -> list[Record]:
    """Every image the overlay recorded, newest first (the git log of the file)."""
    log = git("log", "--format=%H%x1f%cs%x1f%B%x1e", "--", env.overlay_file)
    records = []
    for entry in filter(None, (part.strip() for part in log.split("\x1e"))):
        commit, date, body = entry.split("\x1f")
        ref = image_entry(git("show", f"{commit}:{env.overlay_file}"))
        if ref is None or not ref.is_release:
            continue  # the template's placeholder, before the first deploy
        replaced = re.search(rf"^{ROLLED_BACK_FROM}: (\S+)$", body, re.MULTILINE)
        records.append(Record(commit, date, ref, replaced[1] if replaced else ""))
    return records


def rollback_target(records: list[Record], current: ImageRef | None, to: str) -> ImageRef:
    """`--to`'s image, else the newest one before the current that no rollback abandoned."""
    if to:
        matches = {r.ref for r in records if len(to) >= 7 and r.ref.tag.startswith(to)}
        if len(matches) != 1:
            raise Exit(f"error: --to {to} matches {len(matches)} recorded images", code=1)
        return matches.pop()
    abandoned = {record.rolled_back_from for record in records}
    for record in records:
        if record.ref != current and str(record.ref) not in abandoned:
            return record.ref
    raise Exit("error: the overlay's history records no earlier image to roll back to", code=1)


ROLLBACK_STEPS = ("Preflight", "History", "Registry", "Overlay", "Commit and push", "Rollout")


@task(
    positional=[],
    help={
        "env": "stage or prod",
        "cloud": HELP["cloud"],
        "to": "this recorded tag (a commit SHA prefix) instead of the previous image",
        "wait": HELP["wait"],
        "timeout": HELP["timeout"],
        "dry_run": HELP["dry_run"],
        "yes": "do not ask before changing prod",
    },
)
def rollback(c, env, cloud="", to="", wait=False, timeout=600, dry_run=False, yes=False):
    """Re-point an environment at the image it ran before (the overlay's git history)."""
    target = environment(c, env, cloud or setting(c, "cloud"))
    progress = Progress(f"rollback {target.label}", ROLLBACK_STEPS, dry_run)
    progress.step("Preflight")
    preflight(c, target, progress, wait)

    progress.step("History")
    current = image_entry(target.overlay.read_text())
    records = history(c, target)
    abandoned = {record.rolled_back_from for record in records}
    for record in records[:10]:
        mark = "  (current)" if record.ref == current else ""
        mark += "  (a rollback replaced it)" if str(record.ref) in abandoned else ""
        progress.note(f"{record.date} {record.commit[:12]}  {record.ref.short}{mark}")
    ref = rollback_target(records, current, to)
    progress.ok(f"from {current.short if current else 'nothing recorded'} back to {ref.short}")

    progress.step("Registry")
    registry_login(c, ref.registry, progress)
    check_in_registry(c, ref, progress)

    progress.step("Overlay")
    overlay = prepare_overlay(target, ref, progress)
    if env == PROD and not (dry_run or yes or confirm(f"Roll {target.label} back to {ref}?")):
        raise Exit(f"rollback: {target.label} unchanged (the answer was not yes)", code=1)

    progress.step("Commit and push")
    replaced = {ROLLED_BACK_FROM: str(current)}
    message = commit_message(f"Roll back {target.label} to {ref.short}", target, ref, **replaced)
    commit = commit_and_push(c, target, overlay, message, progress)
    rollout(c, target, ref, commit, wait, int(timeout), progress)
    print(f"\n{'Would roll back' if dry_run else 'Rolled back'} {target.label} to {ref}.")


@task(help={"env": "stage or prod", "cloud": HELP["cloud"]}, positional=[])
def status(c, env, cloud=""):
    """Argo CD's view of an environment next to Git's: sync, health, images (exit 1 if apart)."""
    target = environment(c, env, cloud or setting(c, "cloud"))
    require_all(["git", CLOUD_CLI[target.cloud], "kubectl"])
    progress = Progress(
        f"{target.application}: {target.label}, cluster {target.cluster}", (), False
    )
    fetch(c, target, progress)
    tip = git("rev-parse", target.tracking)
    wanted = image_entry(git("show", f"{target.tracking}:{target.overlay_file}"))
    with cluster_access(c, target, progress) as kube:
        state = read_application(c, target, kube)
    behind = "" if state.revision == tip else f" (Git is at {tip[:12]})"
    operation = state.operation + (
        f": {state.operation_message}" if state.operation_message else ""
    )
    for name, value in (
        ("git", f"{target.tracking} {tip[:12]} pins {wanted}"),
        ("sync", f"{state.sync} at {state.revision[:12] or '?'}{behind}"),
        ("health", state.health),
        ("last sync", operation or "none"),
        ("images", ", ".join(state.images) or "none reported"),
        ("unhealthy", "; ".join(state.unhealthy) or "none"),
    ):
        print(f"  {name:10} {value}")
    in_step = wanted is not None and state.runs(wanted) and not behind
    print(f"\n{target.application} is {'in step' if in_step else 'NOT in step'} with Git.")
    if not in_step:
        raise Exit(code=1)


argocd = Collection("argocd")
argocd.add_task(status)
