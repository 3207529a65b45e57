"""Releases, the GitOps way: `invoke deploy`, `invoke rollback`, `invoke argocd.status`.

A release changes one thing: the `todo` image entry (newName, newTag = the commit SHA the image
was built from, digest) of kustomize/overlays/<cloud>/<env>/kustomization.yaml, in a commit of
its own pushed to the branch that environment's Argo CD Application follows (read from the
rendered kustomize/argocd/<cloud>/<env>: stage follows develop, prod follows main). Stage builds
HEAD once and pins its digest; prod promotes the exact image stage runs, without a rebuild, and
only when HEAD holds its code; rollback goes back along the overlay's git history.

The entry is edited with ruamel.yaml, a round-trip YAML library that keeps comments, key order
and layout, so the commit's diff is the entry alone. `kustomize edit set image` would write the
same values but re-serializes the file and moves comments (kubernetes-sigs/kustomize#4481), and
would be one more binary to install: kubectl, which renders the overlays, has no `edit`. The
edited overlay must render, with ops/k8s.py's renderer, the pinned image in every workload.

Every run first collects what would stop it (tools, git state, remote, credentials), each problem
with its fix. A real run changes nothing while there is one and lists them all; a dry run prints
the whole plan anyway (every command, the overlay diff, the commit message, <placeholders> for
what it cannot know), then the problems, and exits 1 if there are any.

Settings: the `release` section of invoke.yaml; INVOKE_RELEASE_<KEY> variables override it.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit
from ruamel.yaml import YAML
from ruamel.yaml.util import load_yaml_guess_indent

from ops import image, k8s
from ops.tf import CLOUDS, ENVIRONMENTS
from ops.tools import REPO_ROOT, UV_FIX, confirm, git, require

STAGE, PROD = ENVIRONMENTS
IMAGE_INPUTS = (*image.CONTEXT_FILES, "app")  # two commits with the same inputs, one image
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
ECR = re.compile(r"\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")
REPOSITORY = {
    "do": r"registry\.digitalocean\.com/[a-z0-9-]+/[a-z0-9._/-]+",
    "aws": rf"{ECR.pattern}/[a-z0-9._/-]+",
}
ROLLED_BACK_FROM = "Rolled-back-from"  # commit trailer: the image a rollback replaced
CLI = {"do": "doctl", "aws": "aws"}
FIXES = {
    "git": "install git (https://git-scm.com/downloads)",
    "docker": image.DOCKER_FIX,
    "doctl": "install doctl (https://docs.digitalocean.com/reference/doctl/how-to/install/)",
    "aws": "install the AWS CLI v2 "
    "(https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)",
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/); "
    "--wait reads the Argo CD Application with it",
    "uv": UV_FIX,
    "cosign": image.COSIGN_FIX,
}
# A read-only call that says whom the cloud CLI acts for, and the fix when it cannot.
WHOAMI = {
    "do": (
        ["doctl", "account", "get", "--format", "Email", "--no-header"],
        "export DIGITALOCEAN_ACCESS_TOKEN (https://docs.digitalocean.com/reference/api/"
        "create-personal-access-token/) or run `doctl auth init`",
    ),
    "aws": (
        ["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"],
        "run `aws sso login` or `aws configure` (CI assumes AWS_DEPLOY_ROLE_ARN by OIDC)",
    ),
}
DEFAULTS = {  # the `release` section of invoke.yaml documents each key
    "cloud": "do",
    "remote": "origin",
    "image_repository": {"do": "", "aws": ""},
    "platforms": image.PUSH_PLATFORMS,
    "cluster_name": "todo-{env}",
    "do_stage": "kubernetes",
    "test_command": "uv run invoke test",
    "cache_from": "",
    "cache_to": "",
}


def setting(c, key: str):
    return (c.config.get("release") or {}).get(key, DEFAULTS[key])


# --- Output and commands -------------------------------------------------------------------


def step(name: str) -> None:
    print(f"== {name}", flush=True)


def ok(text: str) -> None:
    print(f"  ok  {text}", flush=True)


def show(args: list[str] | str, would: bool = False, note: str = "") -> None:
    """A command as one would type it: `$` when it runs, `would run:` when a dry run skips it."""
    text = args if isinstance(args, str) else shlex.join(args)
    text = text.replace(f"{REPO_ROOT}/", "").replace(str(REPO_ROOT), ".")
    print(f"  {'would run:' if would else '$'} {text}{f'   # {note}' if note else ''}", flush=True)


def sh(args: list[str], dry_run=False, stream=False, env=None):
    """Run a command in the repository, shown first; a dry run only shows it (None)."""
    show(args, would=dry_run)
    if not dry_run:
        env = {**os.environ, **(env or {})}
        capture = not stream
        return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=capture, text=True)  # noqa: S603


def said(result) -> str:
    """What a failed command said, in one line: its first error line, else its last one."""
    lines = ((result.stderr or "").strip() or (result.stdout or "").strip()).splitlines()
    errors = [line for line in lines if re.match(r"(fatal|error|ERROR|Error)\b", line)]
    return (errors or lines or [f"exit {result.returncode}"])[0 if errors else -1]


def stop_on(problems: list[str], dry_run: bool, done: str = "") -> None:
    """Before a change: a real run stops while a problem stands, listing them all. At the end
    (`done`): a dry run lists its problems too, and exits 1 if there are any."""
    if done:
        print(f"\n{done}")
    if problems and (done or not dry_run):
        why = "a real run would stop before changing anything" if dry_run else "nothing changed"
        raise Exit("\n  - ".join([f"error: {len(problems)} problem(s), {why}:", *problems]), 1)


# --- Environments, images and the overlay ----------------------------------------------------


@dataclass(frozen=True)
class Environment:
    """A cloud environment as its Argo CD Application describes it."""

    cloud: str
    name: str
    application: str
    namespace: str  # Argo CD's
    repo_url: str
    branch: str
    overlay_dir: str  # relative to the repository root
    cluster: str
    remote: str

    label = property(lambda self: f"{self.name} ({self.cloud})")
    overlay_file = property(lambda self: f"{self.overlay_dir}/kustomization.yaml")
    overlay = property(lambda self: REPO_ROOT / self.overlay_file)
    tracking = property(lambda self: f"{self.remote}/{self.branch}")
    options = property(lambda self: f"--env {self.name} --cloud {self.cloud}")


def environment(c, env: str, cloud: str) -> Environment:
    """The environment's Application, branch and overlay, from kustomize/argocd/<cloud>/<env>."""
    cloud = cloud or setting(c, "cloud")
    for value, choices, option in ((env, ENVIRONMENTS, "env"), (cloud, CLOUDS, "cloud")):
        if value not in choices:
            raise Exit(f"error: --{option} must be one of {', '.join(choices)}, not {value!r}", 2)
    try:
        docs = k8s.documents(k8s.render(f"argocd/{cloud}/{env}"))
    except k8s.RenderError as error:
        raise Exit(f"error: {error}", code=1) from None
    (app,) = (doc for doc in docs if doc["kind"] == "Application")
    source, cluster = app["spec"]["source"], setting(c, "cluster_name").format(env=env)
    name, namespace = app["metadata"]["name"], app["metadata"]["namespace"]
    repo_url, branch, path = source["repoURL"], source["targetRevision"], source["path"]
    remote = setting(c, "remote")
    return Environment(cloud, env, name, namespace, repo_url, branch, path, cluster, remote)


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"

    short = property(
        lambda self: f"{image.IMAGE_NAME} {self.tag[:12] if self.is_commit else self.tag}"
    )
    is_commit = property(lambda self: bool(image.COMMIT_SHA.fullmatch(self.tag)))
    registry = property(lambda self: self.repository.split("/", 1)[0])

    @property
    def is_release(self) -> bool:
        """Tagged with a commit and pinned by digest: what a release records."""
        return self.is_commit and bool(DIGEST.fullmatch(self.digest))


def round_trip(kustomization: str) -> tuple[YAML, dict]:
    """ruamel.yaml set to the file's own list indentation, and the file loaded with it."""
    _, sequence, offset = load_yaml_guess_indent(kustomization)
    yaml = YAML()  # round-trip mode: comments, key order and quotes are kept
    yaml.indent(mapping=2, sequence=sequence or 2, offset=offset or 0)
    yaml.preserve_quotes, yaml.width = True, 4096
    return yaml, yaml.load(kustomization)


def dumped(yaml: YAML, document: dict) -> str:
    text = io.StringIO()
    yaml.dump(document, text)
    return text.getvalue()


def todo_entry(document: dict) -> dict | None:
    entries = document.get("images") or []
    return next((entry for entry in entries if entry.get("name") == image.IMAGE_NAME), None)


def image_entry(kustomization: str) -> ImageRef | None:
    """The overlay's `todo` image entry, or None when it has none."""
    entry = todo_entry(round_trip(kustomization)[1])
    return entry and ImageRef(*(str(entry.get(k, "")) for k in ("newName", "newTag", "digest")))


def set_image(kustomization: str, ref: ImageRef) -> str:
    """The kustomization with its `todo` entry pinned to `ref`, and nothing else changed."""
    yaml, document = round_trip(kustomization)
    if dumped(yaml, document) != kustomization:
        raise ValueError("writing it back would change its layout too: indent it evenly")
    if (entry := todo_entry(document)) is None:
        raise ValueError(f"it has no `images:` entry named {image.IMAGE_NAME}")
    for key, value in (("newName", ref.repository), ("newTag", ref.tag), ("digest", ref.digest)):
        if key in entry:
            entry[key] = value
        else:  # before the entry's last key, which holds the blank line or comment after it
            entry.insert(len(entry) - 1, key, value)
    return dumped(yaml, document)


def rendered_images(env: Environment, kustomization: str) -> set[str]:
    """The container images of the overlay rendered with `kustomization` in its place, from a
    scratch copy of kustomize/ (the repository stays untouched, in dry runs too)."""
    with tempfile.TemporaryDirectory(prefix="todo-render-") as tmp:
        shutil.copytree(k8s.KUSTOMIZE_DIR, Path(tmp) / k8s.KUSTOMIZE_DIR.name)
        (Path(tmp) / env.overlay_file).write_text(kustomization)
        try:
            # render() takes a folder's path as well as an overlay's name.
            docs = k8s.documents(k8s.render(f"{tmp}/{env.overlay_dir}"))
        except k8s.RenderError as error:
            raise Exit(f"error: the edited overlay does not render: {error}", code=1) from None
    pods = [doc.get("spec", {}).get("template", {}).get("spec", {}) for doc in docs]
    containers = [
        c for pod in pods for c in pod.get("containers", []) + pod.get("initContainers", [])
    ]
    return {container["image"] for container in containers}


def image_input_changes(commit: str, other: str = "HEAD") -> list[str]:
    """Image inputs that differ between two commits; empty when both build the same image."""
    if not git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", check=False):
        return [f"everything ({commit[:12]} is not in this repository)"]
    return git("diff", "--name-only", commit, other, "--", *IMAGE_INPUTS).split()


# --- Preflight: every problem, each with its fix -------------------------------------------------


def preflight(env: Environment, tools: list[str], engine=False, fetch=()) -> list[str]:
    """What would stop the run. Read-only, so a dry run checks it too."""
    step("Preflight")
    require("git", FIXES["git"])  # no plan without it
    cli, docker = CLI[env.cloud], shutil.which("docker")
    missing = [tool for tool in dict.fromkeys(["docker", cli, *tools]) if not shutil.which(tool)]
    problems = [f"`{tool}` is not installed. Fix: {FIXES[tool]}" for tool in missing]
    if changes := image.uncommitted_changes():
        problems.append(
            f"the working tree has uncommitted changes ({', '.join(changes[:5])}); a release "
            "ships commits only. Fix: commit or stash them"
        )
    if (branch := git("branch", "--show-current")) != env.branch:
        problems.append(
            f"{env.label} deploys from {env.branch}, the branch its Argo CD Application "
            f"follows, but HEAD is {f'on {branch}' if branch else 'detached'}. "
            f"Fix: git switch {env.branch}"
        )
    problems += remote_problems(env, fetch)
    engine_check = ["docker", "version", "--format", "{{.Server.Version}}"]
    if engine and docker and (answer := sh(engine_check)).returncode:
        problems.append(
            f"no Docker engine is reachable ({said(answer)}). Fix: start Docker, or point "
            "DOCKER_HOST at a running engine"
        )
    if docker and sh(["docker", "buildx", "version"]).returncode:
        problems.append(
            "`docker buildx` is missing. Fix: install the buildx plugin "
            "(https://github.com/docker/buildx#installing)"
        )
    whoami, fix = WHOAMI[env.cloud]
    if cli in missing:
        show(whoami, note=f"not run: {cli} is missing")
    elif (result := sh(whoami)).returncode:
        problems.append(f"{cli} has no working credentials ({said(result)}). Fix: {fix}")
    else:
        ok(f"{cli} acts as {result.stdout.strip()}")
    return problems


def remote_problems(env: Environment, fetch=()) -> list[str]:
    """The remote is the repository Argo CD pulls from, and the branch is level with it."""
    if not (pushed := git("remote", "get-url", env.remote, check=False)):
        return [
            f"there is no git remote `{env.remote}`. Fix: git remote add {env.remote} "
            f"{env.repo_url} (the repository Argo CD pulls from)"
        ]
    if repository_id(pushed) != repository_id(env.repo_url):
        return [
            f"Argo CD ({env.application}) pulls {env.repo_url}, but `{env.remote}` is "
            f"{pushed}, so a release commit would never reach it. Fix: set repoURL in "
            "kustomize/argocd/base/source.yaml to this repository"
        ]
    if (fetched := sh(["git", "fetch", "--quiet", env.remote, env.branch, *fetch])).returncode:
        return [f"cannot fetch {env.tracking} ({said(fetched)}). Fix: check access to {pushed}"]
    if (head := git("rev-parse", "HEAD")) == git("rev-parse", env.tracking):
        ok(f"HEAD is {env.tracking} ({head[:12]}), in the repository Argo CD pulls")
        return []
    ahead = git("rev-list", "--count", f"{env.tracking}..HEAD")
    behind = git("rev-list", "--count", f"HEAD..{env.tracking}")
    return [
        f"{env.branch} is {ahead} commit(s) ahead of {env.tracking} and {behind} behind; a "
        "release ships what the remote has. Fix: git pull --rebase, git push, then run again"
    ]


def repository_id(url: str) -> str:
    """host/owner/name of a git URL in any form (https, ssh, scp-like), or a local path."""
    url = url.strip().removesuffix("/").removesuffix(".git")
    if match := re.fullmatch(r"(?:ssh://)?[^@/]+@([^:/]+)[:/](.+)", url):
        return f"{match[1].lower()}/{match[2]}"
    if match := re.fullmatch(r"(?:https?|git)://(?:[^@/]+@)?([^/]+)/(.+)", url):
        return f"{match[1].lower()}/{match[2]}"
    return str(Path(url.removeprefix("file://")).resolve())


def image_repository(c, cloud: str, problems: list[str]) -> str:
    """Where stage's images go: release.image_repository.<cloud> in invoke.yaml."""
    repository = setting(c, "image_repository").get(cloud, "")
    if re.fullmatch(REPOSITORY[cloud], repository):
        ok(f"image repository {repository}")
        return repository
    what = f"{repository!r} is not a {cloud.upper()} image repository" if repository else "unset"
    problems.append(
        f"release.image_repository.{cloud} is {what}. Fix: set it in invoke.yaml to the output "
        f"of `terraform -chdir=terraform/{cloud}/stacks/shared output -raw image_repository`"
    )
    return "<image-repository>"


# --- Registry, the release commit and Argo CD ----------------------------------------------------


def registry_login(cloud: str, ref: ImageRef, dry_run: bool) -> None:
    """Short-lived Docker CLI credentials for DOCR (doctl) or ECR (aws, the password on stdin)."""
    if cloud == "do":
        result = sh(["doctl", "registry", "login", "--expiry-seconds", "1800"], dry_run)
    else:
        region = match[1] if (match := ECR.fullmatch(ref.registry)) else "<region>"
        password = ["aws", "ecr", "get-login-password", "--region", region]
        login = ["docker", "login", "--username", "AWS", "--password-stdin", ref.registry]
        show(f"{shlex.join(password)} | {shlex.join(login)}", would=dry_run)
        if dry_run:
            return
        result = subprocess.run(password, capture_output=True, text=True)  # noqa: S603
        if result.returncode == 0:
            result = subprocess.run(login, input=result.stdout, capture_output=True, text=True)  # noqa: S603
    if result and result.returncode:
        raise Exit(f"error: cannot log in to {ref.registry}: {said(result)}", code=1)


def check_in_registry(c, ref: ImageRef, dry_run: bool) -> None:
    """The registry still holds the tag, at the recorded digest."""
    reference = f"{ref.repository}:{ref.tag}"
    show(image.inspect_command(reference), would=dry_run, note="must show the recorded digest")
    if not dry_run:
        if (digest := image.remote_digest(c, reference)) != ref.digest:
            now = f"now points at {digest}" if digest else "is gone"
            raise Exit(f"error: {reference} {now}, not the recorded {ref.digest}", code=1)
        ok(f"the registry holds {reference} at the recorded digest")


def release_commit(env: Environment, ref: ImageRef, subject: str, dry_run: bool, ask="", **more):
    """Pin `ref` in the overlay (shown as a diff, proven to render), commit that file alone and
    push it to the environment's branch: the commit ("" in a dry run)."""
    step("Overlay")
    before = env.overlay.read_text()
    try:
        after = set_image(before, ref)
    except ValueError as error:
        raise Exit(f"error: cannot edit {env.overlay_file}: {error}", code=1) from None
    names = (f"a/{env.overlay_file}", f"b/{env.overlay_file}")
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), *names, lineterm=""):
        print(f"    {line}")
    if (images := rendered_images(env, after)) != {str(ref)}:
        raise Exit(f"error: the edited overlay renders {sorted(images)}, not only {ref}", code=1)
    ok(f"every workload of the rendered overlay runs {ref.short}")
    if ask and not dry_run and not confirm(ask):
        raise Exit(f"{env.label} unchanged (the answer was not yes)", code=1)

    step("Commit and push")
    trailers = {"Environment": f"{env.cloud}/{env.name}", "Image": ref, "Image-Tag": ref.tag}
    trailers |= {"Image-Digest": ref.digest, **more}
    message = "\n".join([subject, "", *(f"{key}: {value}" for key, value in trailers.items())])
    show(["git", "commit", "-m", subject, "--", env.overlay_file], would=dry_run, note="and:")
    print("\n".join(f"      | {line}" for line in message.splitlines()[2:]))
    push = ["git", "push", env.remote, f"HEAD:refs/heads/{env.branch}"]
    if dry_run:
        show(push, would=True)
        return ""
    env.overlay.write_text(after)
    git("commit", "--quiet", "-m", message, "--", env.overlay_file)
    if sh(push).returncode:  # someone pushed meanwhile: put the release commit on top, once
        print(f"  {env.tracking} moved on; rebasing the release commit onto it")
        rebased = sh(["git", "pull", "--rebase", "--quiet", env.remote, env.branch])
        if rebased.returncode:
            git("rebase", "--abort", check=False)
            raise Exit(
                f"error: cannot rebase the release commit onto {env.tracking} ({said(rebased)})"
                "; it is committed here, not pushed. Fix: git pull --rebase, resolve, git push",
                code=1,
            )
        if (pushed := sh(push)).returncode:
            raise Exit(f"error: git push: {said(pushed)}", code=1)
    ok(f"pushed {git('rev-parse', '--short=12', 'HEAD')} to {env.tracking}; Argo CD syncs it")
    return git("rev-parse", "HEAD")


@contextlib.contextmanager
def cluster_access(env: Environment, ref: ImageRef | None, dry_run=False):
    """Credentials for the environment's cluster in a throwaway kubeconfig: its variables."""
    with tempfile.TemporaryDirectory(prefix="todo-kube-") as tmp:
        kube = {"KUBECONFIG": f"{tmp}/config"}
        if env.cloud == "do":
            save = ["doctl", "kubernetes", "cluster", "kubeconfig", "save", env.cluster]
            save += ["--expiry-seconds", "3600"]
        else:  # the cluster is in the region of the ECR repository (terraform puts both)
            match = ECR.fullmatch(ref.registry if ref else "")
            region = match[1] if match else "<region>"
            save = ["aws", "eks", "update-kubeconfig", "--name", env.cluster]
            save += ["--region", region, "--kubeconfig", kube["KUBECONFIG"]]
        if (result := sh(save, dry_run, env=kube)) and result.returncode:
            raise Exit(
                f"error: no credentials for cluster {env.cluster} ({said(result)}). "
                "Fix: check that it exists, and release.cluster_name in invoke.yaml",
                code=1,
            )
        yield kube


def kubectl(env: Environment, *args: str) -> list[str]:
    return ["kubectl", "--namespace", env.namespace, *args]


def application(env: Environment, kube: dict) -> dict:
    """What the Argo CD Application reports about itself, flattened."""
    args = kubectl(env, "get", "application", env.application, "--output", "json")
    result = subprocess.run(args, env={**os.environ, **kube}, capture_output=True, text=True)  # noqa: S603
    if result.returncode:
        raise Exit(f"error: cannot read Application {env.application}: {said(result)}", code=1)
    status = json.loads(result.stdout).get("status", {})
    sync, operation = status.get("sync", {}), status.get("operationState", {})
    resources = [r for r in status.get("resources", []) if r.get("health", {}).get("status")]
    return {
        "sync": sync.get("status", "Unknown"),
        "revision": sync.get("revision", ""),
        "health": status.get("health", {}).get("status", "Unknown"),
        "phase": operation.get("phase", ""),  # of the last sync
        "message": operation.get("message", ""),
        "synced": operation.get("syncResult", {}).get("revision", ""),
        "images": status.get("summary", {}).get("images", []),
        "unhealthy": [
            f"{r['kind']}/{r['name']} {r['health']['status']}"
            + (f" ({r['health']['message']})" if r["health"].get("message") else "")
            for r in resources
            if r["health"]["status"] != "Healthy"
        ],
    }


def rollout(env: Environment, ref: ImageRef, commit: str, wait: bool, timeout: int, dry_run: bool):
    """With --wait: until Argo CD reports `ref` Synced and Healthy; stop at a failed sync."""
    step("Rollout")
    if not wait:
        return print(f"  not waiting (pass --wait); watch it: invoke argocd.status {env.options}")
    see = f"`invoke argocd.status {env.options}`; `invoke rollback {env.options}` goes back"
    with cluster_access(env, ref, dry_run) as kube:
        # Argo CD polls Git every few minutes; this annotation makes it look now.
        refresh = ["annotate", "application", env.application, "argocd.argoproj.io/refresh=normal"]
        if (result := sh(kubectl(env, *refresh, "--overwrite"), dry_run, env=kube)) and (
            result.returncode
        ):
            if "NotFound" in said(result):  # the apps stack holds it back until a release
                apps = f"--stack {env.cloud}/apps --env {env.name}"
                raise Exit(
                    f"error: Application {env.application} does not exist yet; the apps stack "
                    "creates it once the overlay pins a release, as it now does. Fix: invoke "
                    f"tf.plan {apps}, then invoke tf.apply {apps}",
                    code=1,
                )
            raise Exit(f"error: cannot reach Application {env.application}: {said(result)}", 1)
        # Argo CD's own status, through kubectl wait: the release commit's sync done, then
        # every resource healthy; on a timeout, what Argo CD says is wrong.
        deadline = time.monotonic() + timeout
        for condition in (
            f"{{.status.operationState.syncResult.revision}}={commit or '<release-commit>'}",
            "{.status.health.status}=Healthy",
        ):
            left = max(1, round(deadline - time.monotonic()))
            wait_for = ["wait", "application", env.application, "--namespace", env.namespace]
            wait_for += [f"--for=jsonpath={condition}", f"--timeout={left}s"]
            result = sh(["kubectl", *wait_for], dry_run, env=kube)
            if dry_run:
                continue
            app = application(env, kube)
            if app["synced"] == commit and app["phase"] in ("Failed", "Error"):
                why = app["message"] or app["phase"]
                raise Exit(f"error: Argo CD failed to sync {ref.short}: {why}. See {see}", 1)
            if result.returncode:
                now = f"{app['sync']} at {app['revision'][:12]}, {app['health']}"
                why = "; ".join(app["unhealthy"][:5]) or "no resource reports a problem"
                raise Exit(
                    f"error: {env.application} did not run {ref.short} Synced and Healthy "
                    f"within {timeout} s (last: {now}; {why}). See {see}",
                    code=1,
                )
        if not dry_run:
            ok(f"{env.application} is Synced and Healthy with {ref.short}")


def app_platform_release(env: Environment, ref: ImageRef, dry_run: bool) -> None:
    """Pin every component of the App Platform app to the image's digest with `doctl apps
    update --wait`, which returns once the deployment (after its PRE_DEPLOY migrate) is live."""
    step("App Platform")
    listed = sh(["doctl", "apps", "list", "--format", "ID,Spec.Name", "--no-header"], dry_run)
    apps = dict(line.split()[::-1] for line in listed.stdout.splitlines()) if listed else {}
    if listed and env.cluster not in apps:
        raise Exit(
            f"error: no App Platform app {env.cluster} ({said(listed)}). Fix: invoke tf.plan "
            "--stack do/app-platform --env stage, then invoke tf.apply with the same options "
            "(or set release.cluster_name in invoke.yaml)",
            code=1,
        )
    app_id = apps.get(env.cluster, "<app-id>")
    got = sh(["doctl", "apps", "spec", "get", app_id, "--format", "json"], dry_run)
    if got and got.returncode:
        raise Exit(f"error: cannot read the spec of {env.cluster}: {said(got)}", code=1)
    with tempfile.TemporaryDirectory(prefix="todo-app-spec-") as tmp:
        spec, path = json.loads(got.stdout) if got else {}, Path(tmp) / "spec.json"
        for kind in ("services", "workers", "jobs"):
            for component in spec.get(kind, []):
                component["image"].pop("tag", None)  # App Platform takes a tag or a digest
                component["image"]["digest"] = ref.digest
        path.write_text(json.dumps(spec))
        update = ["doctl", "apps", "update", app_id, "--spec", str(path), "--wait"]
        if (result := sh(update, dry_run)) and result.returncode:
            raise Exit(f"error: App Platform did not deploy {ref.short}: {said(result)}", code=1)
    if not dry_run:
        ok(f"{env.cluster} runs {ref.short} (every component at {ref.digest[:19]}...)")


def check_running(env: Environment) -> None:
    """What only the running cloud can prove, after the first apply and release: every check
    runs, each failure says what to look at, and any failure exits 1."""
    title(f"check {env.label}: the running environment", dry_run=False)
    for tool in ("git", CLI[env.cloud], "kubectl", "curl"):
        require(tool, FIXES.get(tool, "install curl (https://curl.se/download.html)"))
    docs = k8s.documents(k8s.render(env.overlay_dir.removeprefix("kustomize/overlays/")))
    (ingress,) = [doc for doc in docs if doc["kind"] == "Ingress"]
    namespace, host = ingress["metadata"]["namespace"], ingress["spec"]["rules"][0]["host"]
    argo, ready = (env.application, env.namespace), "--for=condition=Ready"
    checks = {  # what: (kind, name, namespace, condition) for kubectl wait
        "Argo CD: Synced": ("application", *argo, "--for=jsonpath={.status.sync.status}=Synced"),
        "Argo CD: Healthy": (
            "application",
            *argo,
            "--for=jsonpath={.status.health.status}=Healthy",
        ),
    }
    for tls in ingress["spec"].get("tls", []):  # cert-manager names it after the TLS Secret
        secret = tls["secretName"]
        checks[f"certificate {secret} Ready (cert-manager)"] = (
            "certificate",
            secret,
            namespace,
            ready,
        )
    for name in (doc["metadata"]["name"] for doc in docs if doc["kind"] == "ExternalSecret"):
        checks[f"ExternalSecret {name} synced"] = ("externalsecret", name, namespace, ready)
    problems = []
    with cluster_access(env, image_entry(env.overlay.read_text())) as kube:
        for name, (kind, resource, where, condition) in checks.items():
            wait_for = [kind, resource, "--namespace", where, condition, "--timeout=60s"]
            result = sh(["kubectl", "wait", *wait_for], env=kube)
            if result.returncode:
                problems.append(f"{name}: {said(result)}")
            else:
                ok(name)
    url = f"https://{host}/readyz"  # the app with its database and broker, through TLS
    curl = ["curl", "--fail", "--silent", "--show-error", "--max-time", "15", "--output"]
    if (result := sh([*curl, os.devnull, url])).returncode:
        problems.append(f"{url}: {said(result)} (DNS to the load balancer, TLS, the app)")
    else:
        ok(f"{url} answers through the load balancer, with a trusted certificate")
    if problems:
        see = f"see invoke argocd.status {env.options}"
        raise Exit("\n  - ".join([f"error: {env.label} is not serving ({see}):", *problems]), 1)
    print(f"\n{env.label} serves {host}: synced, healthy, certified.")


# --- Tasks -------------------------------------------------------------------------------------

HELP = {
    "env": "stage (build HEAD, push, deploy) or prod (promote the image stage runs)",
    "cloud": "do or aws (default: release.cloud in invoke.yaml)",
    "skip_tests": "do not run the test suite first (CI ran it in an earlier job)",
    "wait": "wait until Argo CD reports the image Synced and Healthy (reads it with kubectl)",
    "timeout": "seconds --wait waits (default 600)",
    "dry_run": "print the whole plan (commands, overlay diff, commit) and every problem; "
    "change nothing",
    "yes": "do not ask before changing prod (in CI the GitHub environment approves)",
    "check": "change nothing: check the running environment (Argo CD health, certificate, "
    "ExternalSecret, a request through the public URL); exit 1 on any problem",
}


def title(what: str, dry_run: bool) -> None:
    note = "  (dry run: nothing changes; <...> marks what it cannot know)"
    print(what + (note if dry_run else ""), flush=True)


@task(help=HELP, positional=[])
def deploy(
    c,
    env,
    cloud="",
    skip_tests=False,
    wait=False,
    timeout=600,
    dry_run=False,
    yes=False,
    check=False,
):
    """Ship HEAD to stage (built once, pinned by digest), or promote stage's image to prod."""
    target = environment(c, env, cloud)
    if check:
        return check_running(target)
    if env == PROD:
        return promote(c, target, wait, int(timeout), dry_run, yes)
    title(f"deploy {target.label}: HEAD of {target.branch}", dry_run)
    tests = shlex.split(setting(c, "test_command"))
    tools = ([] if skip_tests else tests[:1]) + ["kubectl"] * wait
    problems = preflight(target, tools, engine=True)
    repository = image_repository(c, target.cloud, problems)
    stop_on(problems, dry_run)
    current, head = image_entry(target.overlay.read_text()), git("rev-parse", "HEAD")
    if current and current.is_release and not image_input_changes(current.tag):
        built = f"built from HEAD's {', '.join(IMAGE_INPUTS)}"
        return stop_on(problems, dry_run, f"Nothing to deploy: it runs {current.short}, {built}.")

    step("Tests")
    if skip_tests:
        print("  skipped (--skip-tests)")
    elif (result := sh(tests, dry_run, stream=True)) and result.returncode:
        raise Exit(
            f"error: the tests failed; nothing was deployed. Fix: make `{shlex.join(tests)}` "
            "pass (or pass --skip-tests when CI ran them already)",
            code=1,
        )

    step("Image")
    build = [setting(c, key) for key in ("platforms", "cache_from", "cache_to")]
    registry_login(target.cloud, ImageRef(repository, head, ""), dry_run)
    if dry_run:
        reference = f"{repository}:{head}"
        show(image.inspect_command(reference), would=True, note="a digest found is reused")
        push = image.push_command(reference, Path("<metadata-file>"), *build)
        show(push, would=True, note="unless the registry has the tag")
        ref = ImageRef(repository, head, "<pushed-digest>")
    else:
        tag, digest, built = image.publish(c, repository, *build, show=show)
        ref = ImageRef(repository, tag, digest)
        ok(f"{'pushed' if built else 'in the registry already (built once per commit)'}: {ref}")

    if target.cloud == "do" and setting(c, "do_stage") == "app-platform":
        app_platform_release(target, ref, dry_run)  # the overlay still records it, for prod
        release_commit(target, ref, f"Deploy {ref.short} to {target.label} (App Platform)", dry_run)
        return stop_on(problems, dry_run, f"{'Would deploy' if dry_run else 'Deployed'} {ref}.")
    commit = release_commit(target, ref, f"Deploy {ref.short} to {target.label}", dry_run)
    rollout(target, ref, commit, wait, int(timeout), dry_run)
    stop_on(problems, dry_run, f"{'Would deploy' if dry_run else 'Deployed'} {ref}.")


def promote(c, env: Environment, wait: bool, timeout: int, dry_run: bool, yes: bool) -> None:
    title(f"deploy {env.label}: promote the image stage runs", dry_run)
    stage = environment(c, STAGE, env.cloud)
    problems = preflight(env, ["cosign", *["kubectl"] * wait], fetch=[stage.branch])
    step("Stage's image")
    ref = ImageRef("<stage-repository>", "<stage-tag>", "<stage-digest>")
    if git("rev-parse", "--verify", "--quiet", stage.tracking, check=False):  # else: not fetched
        pinned = image_entry(git("show", f"{stage.tracking}:{stage.overlay_file}"))
        head = git("rev-parse", "HEAD")
        if pinned is None or not pinned.is_release:
            problems.append(
                f"{stage.tracking} records no deployed image for {stage.label} ({pinned}). "
                f"Fix: invoke deploy {stage.options}"
            )
        elif differing := image_input_changes(pinned.tag, head):
            problems.append(
                f"{stage.label} does not run this commit: its image was built from "
                f"{pinned.tag[:12]}, and HEAD ({head[:12]}) differs in "
                f"{', '.join(differing[:8])}. Fix: deploy this code to stage first (merge it "
                f"into {stage.branch}), then promote"
            )
        else:
            ok(f"{stage.label} runs {pinned}, built from HEAD's code: promoting it, no rebuild")
            ref = pinned
    else:
        print(f"  not read: {stage.tracking} could not be fetched")
    stop_on(problems, dry_run)
    if image_entry(env.overlay.read_text()) == ref:
        return stop_on(problems, dry_run, f"Nothing to promote: it runs {ref.short} already.")

    step("Registry")
    registry_login(env.cloud, ref, dry_run)
    check_in_registry(c, ref, dry_run)
    signed = f"{ref.repository}@{ref.digest}"
    if problem := image.verify(c, signed, env.repo_url, stage.branch, dry_run, show):
        raise Exit(f"error: {env.label} runs only images CD built here: {problem}", code=1)
    if not dry_run:
        ok(f"{ref.digest[:19]}... is signed by the Deploy workflow, its provenance names this repo")
    subject, ask = f"Promote {ref.short} to {env.label}", f"Promote {ref} to {env.label}?"
    from_stage = {"Promoted-from": f"{stage.cloud}/{stage.name}"}
    commit = release_commit(env, ref, subject, dry_run, "" if yes else ask, **from_stage)
    rollout(env, ref, commit, wait, timeout, dry_run)
    stop_on(problems, dry_run, f"{'Would promote' if dry_run else 'Promoted'} {ref}.")


def history(env: Environment) -> list[tuple[str, str, ImageRef, str]]:
    """(commit, date, image, the image a rollback replaced) for each image the overlay
    recorded, newest first: the git log of the file."""
    records = []
    log = git("log", "--format=%H%x1f%cs%x1f%B%x1e", "--", env.overlay_file)
    for entry in filter(None, (part.strip() for part in log.split("\x1e"))):
        commit, date, body = entry.split("\x1f")
        ref = image_entry(git("show", f"{commit}:{env.overlay_file}"))
        if ref and ref.is_release:  # else the template's placeholder, before the first deploy
            replaced = re.search(rf"^{ROLLED_BACK_FROM}: (\S+)$", body, re.MULTILINE)
            records.append((commit, date, ref, replaced[1] if replaced else ""))
    return records


@task(
    positional=[],
    help={
        **{key: HELP[key] for key in ("cloud", "wait", "timeout", "dry_run")},
        "env": "stage or prod",
        "to": "this recorded tag (a commit SHA prefix) instead of the previous image",
        "yes": "do not ask before changing prod",
    },
)
def rollback(c, env, cloud="", to="", wait=False, timeout=600, dry_run=False, yes=False):
    """Re-point an environment at the image it ran before (the overlay's git history)."""
    target = environment(c, env, cloud)
    title(f"rollback {target.label}", dry_run)
    problems = preflight(target, ["kubectl"] * wait)

    step("History")
    current, records = image_entry(target.overlay.read_text()), history(target)
    abandoned = {replaced for *_, replaced in records}
    for commit, date, ref, _ in records[:10]:
        mark = "  (current)" if ref == current else ""
        mark += "  (a rollback replaced it)" if str(ref) in abandoned else ""
        print(f"  {date} {commit[:12]}  {ref.short}{mark}")
    refs = [ref for _, _, ref, _ in records]
    if to:
        matches = {ref for ref in refs if len(to) >= 7 and ref.tag.startswith(to)}
    else:  # the newest image before the current one that no rollback abandoned
        matches = {ref for ref in refs if ref != current and str(ref) not in abandoned}
        matches = {next(ref for ref in refs if ref in matches)} if matches else set()
    if len(matches) == 1:
        ref = matches.pop()
        ok(f"from {current.short if current else 'nothing recorded'} back to {ref.short}")
    else:
        problems.append(
            f"--to {to} matches {len(matches)} recorded images"
            if to
            else "the overlay's history records no earlier image to roll back to"
        )
        ref = ImageRef("<previous-repository>", "<previous-tag>", "<previous-digest>")
    stop_on(problems, dry_run)

    step("Registry")
    registry_login(target.cloud, ref, dry_run)
    check_in_registry(c, ref, dry_run)
    subject, ask = f"Roll back {target.label} to {ref.short}", f"Roll {target.label} back to {ref}?"
    replaced = {ROLLED_BACK_FROM: str(current)}
    ask = ask if env == PROD and not yes else ""
    commit = release_commit(target, ref, subject, dry_run, ask, **replaced)
    rollout(target, ref, commit, wait, int(timeout), dry_run)
    stop_on(problems, dry_run, f"{'Would roll back' if dry_run else 'Rolled back'} to {ref}.")


@task(help={"env": "stage or prod", "cloud": HELP["cloud"]}, positional=[])
def status(c, env, cloud=""):
    """Argo CD's view of an environment next to Git's: sync, health, images (exit 1 if apart)."""
    target = environment(c, env, cloud)
    for tool in ("git", CLI[target.cloud], "kubectl"):
        require(tool, FIXES[tool])
    print(f"{target.application}: {target.label}, cluster {target.cluster}")
    if (fetched := sh(["git", "fetch", "--quiet", target.remote, target.branch])).returncode:
        raise Exit(f"error: cannot fetch {target.tracking}: {said(fetched)}", code=1)
    tip = git("rev-parse", target.tracking)
    wanted = image_entry(git("show", f"{target.tracking}:{target.overlay_file}"))
    with cluster_access(target, wanted) as kube:
        app = application(target, kube)
    behind = "" if app["revision"] == tip else f" (Git is at {tip[:12]})"
    for name, value in (
        ("git", f"{target.tracking} {tip[:12]} pins {wanted}"),
        ("sync", f"{app['sync']} at {app['revision'][:12] or '?'}{behind}"),
        ("health", app["health"]),
        ("last sync", ": ".join(filter(None, (app["phase"], app["message"]))) or "none"),
        ("images", ", ".join(app["images"]) or "none reported"),
        ("unhealthy", "; ".join(app["unhealthy"]) or "none"),
    ):
        print(f"  {name:10} {value}")
    settled = app["phase"] not in ("Running", "Terminating") and not behind
    healthy = (app["sync"], app["health"]) == ("Synced", "Healthy")
    in_step = wanted is not None and str(wanted) in app["images"] and healthy and settled
    print(f"\n{target.application} is {'in step' if in_step else 'NOT in step'} with Git.")
    if not in_step:
        raise Exit(code=1)


argocd = Collection("argocd")
argocd.add_task(status)
