"""Releases, the GitOps way: `invoke deploy`, `invoke rollback`, `invoke argocd.status`.

A release changes one thing: the `todo` image entry (newName, newTag = the commit SHA the image
was built from, digest) of an environment's overlay, in a commit of its own pushed to the branch
its Argo CD Application follows (kustomize/argocd/<cloud>/<env>: stage follows develop, prod
main). Stage builds HEAD once and pins its digest; prod promotes the image stage runs, without a
rebuild, when HEAD holds its code; rollback goes back along the overlay's git history. The entry
is edited with ruamel.yaml, which keeps comments and layout (`kustomize edit set image` rewrites
the whole file, and kubectl has no `edit`). Every command is printed as it runs; a dry run
prints the ones that would change something instead of running them.

Settings: the `release` section of invoke.yaml (INVOKE_RELEASE_<KEY> overrides it).
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
import tempfile
import time
from dataclasses import dataclass

from invoke import Collection, task
from invoke.exceptions import Exit
from ruamel.yaml import YAML
from ruamel.yaml.util import load_yaml_guess_indent

from ops import image, k8s
from ops.tf import CLOUDS, ENVIRONMENTS
from ops.tools import REPO_ROOT, UV_FIX, confirm, git, require

STAGE, PROD = ENVIRONMENTS
IMAGE_INPUTS = (*image.CONTEXT_FILES, "app")  # two commits with the same inputs, one image
ECR = re.compile(r"\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")
REGISTRY = {"do": r"registry\.digitalocean\.com/[a-z0-9-]+", "aws": ECR.pattern}
ROLLED_BACK_FROM = "Rolled-back-from"  # commit trailer: the image a rollback replaced
CLI = {"do": "doctl", "aws": "aws"}
INSTALL = {
    "git": "https://git-scm.com/downloads",
    "docker": "https://docs.docker.com/get-started/get-docker/",
    "doctl": "https://docs.digitalocean.com/reference/doctl/how-to/install/",
    "aws": "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/",
    "curl": "https://curl.se/download.html",
}
FIXES = {"uv": UV_FIX, "cosign": image.COSIGN_FIX}
# A read-only call that says whom the cloud CLI acts for, and the fix when it cannot.
WHOAMI = {
    "do": ("doctl account get --format Email --no-header", "run `doctl auth init`"),
    "aws": ("aws sts get-caller-identity --query Arn --output text", "run `aws sso login`"),
}


def install(tool: str) -> str:
    return FIXES.get(tool) or f"install {tool} ({INSTALL.get(tool, 'see its docs')})"


def run(c, command, dry=False, failure="", **kwargs):
    """A command, printed as one would type it (`would run:` when a dry run skips it), its
    output captured unless `hide` says otherwise. A failure stops with `error: <failure>: <what
    the command said>`; without `failure` the caller judges it."""
    command = command if isinstance(command, str) else shlex.join(command)
    shown = "  would run: {command}" if dry else "  $ {command}"
    kwargs = {"hide": "both", "warn": True, "in_stream": False, **kwargs}
    result = c.run(command, dry=dry, echo=True, echo_format=shown, **kwargs)
    if failure and result.failed:
        raise Exit(f"error: {failure}: {said(result)}", code=1)
    return result


def show(args: list[str], would=False) -> None:
    """A command run without run(), printed the way run() prints one."""
    print(f"  {'would run:' if would else '$'} {shlex.join(args)}", flush=True)


def said(result) -> str:
    """What a failed command said, in one line: its first error line, else its last one."""
    lines = (result.stderr.strip() or result.stdout.strip() or f"exit {result.exited}").split("\n")
    return next((line for line in lines if re.match(r"(fatal|error)\b", line, re.I)), lines[-1])


# --- Environments, images and the overlay ----------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"

    short = property(lambda self: f"{image.IMAGE_NAME} {self.tag[:12]}")
    registry = property(lambda self: self.repository.split("/", 1)[0])
    # ECR's region, which terraform gives the cluster too.
    region = property(lambda self: (ECR.fullmatch(self.registry) or [0, "<region>"])[1])
    # Tagged with a commit and pinned by digest: what a release records.
    is_release = property(lambda self: bool(image.COMMIT_SHA.fullmatch(self.tag) and self.digest))


@dataclass(frozen=True)
class Environment:
    """A cloud environment as its Argo CD Application (rendered) describes it."""

    cloud: str
    name: str
    app: dict
    cluster: str
    remote: str

    label = property(lambda self: f"{self.name} ({self.cloud})")
    options = property(lambda self: f"--env {self.name} --cloud {self.cloud}")
    application = property(lambda self: self.app["metadata"]["name"])
    kubectl = property(lambda self: ["kubectl", "--namespace", self.app["metadata"]["namespace"]])
    repo_url = property(lambda self: self.app["spec"]["source"]["repoURL"])
    branch = property(lambda self: self.app["spec"]["source"]["targetRevision"])
    tracking = property(lambda self: f"{self.remote}/{self.branch}")
    overlay = property(lambda self: f"{self.app['spec']['source']['path']}/kustomization.yaml")

    def pinned(self, revision: str = "") -> ImageRef | None:
        """The image the overlay pins in the working tree, or at a git revision."""
        if revision:
            return image_entry(git("show", f"{revision}:{self.overlay}"))
        return image_entry((REPO_ROOT / self.overlay).read_text())


def environment(c, env: str, cloud: str) -> Environment:
    cloud = cloud or c.config.release.cloud
    for value, choices, option in ((env, ENVIRONMENTS, "env"), (cloud, CLOUDS, "cloud")):
        if value not in choices:
            raise Exit(f"error: --{option} must be one of {', '.join(choices)}, not {value!r}", 2)
    os.chdir(REPO_ROOT)  # the paths tasks run and print are the repository's
    try:
        docs = k8s.documents(k8s.render(f"argocd/{cloud}/{env}"))
    except k8s.RenderError as error:
        raise Exit(f"error: {error}", code=1) from None
    (app,) = (doc for doc in docs if doc["kind"] == "Application")
    cluster = c.config.release.cluster_name.format(env=env)
    return Environment(cloud, env, app, cluster, c.config.release.remote)


def round_trip(kustomization: str) -> tuple[YAML, dict, dict | None]:
    """ruamel.yaml at the file's own list indentation, the file, and its `todo` image entry."""
    _, sequence, offset = load_yaml_guess_indent(kustomization)
    yaml = YAML()  # round-trip mode: comments, key order and quotes are kept
    yaml.indent(mapping=2, sequence=sequence or 2, offset=offset or 0)
    yaml.preserve_quotes, yaml.width = True, 4096
    document = yaml.load(kustomization)
    entries = document.get("images") or []
    return yaml, document, next((e for e in entries if e.get("name") == image.IMAGE_NAME), None)


def image_entry(kustomization: str) -> ImageRef | None:
    entry = round_trip(kustomization)[2]
    return entry and ImageRef(*(str(entry.get(k, "")) for k in ("newName", "newTag", "digest")))


def set_image(kustomization: str, ref: ImageRef) -> str:
    """The kustomization with its `todo` entry pinned to `ref`, and nothing else changed."""
    yaml, document, entry = round_trip(kustomization)
    if entry is None:
        raise Exit(f"error: the overlay has no `images:` entry named {image.IMAGE_NAME}", 1)
    for key, value in (("newName", ref.repository), ("newTag", ref.tag), ("digest", ref.digest)):
        if key in entry:
            entry[key] = value
        else:  # before the entry's last key, which holds the blank line or comment after it
            entry.insert(len(entry) - 1, key, value)
    yaml.dump(document, edited := io.StringIO())
    return edited.getvalue()


def image_input_changes(commit: str) -> list[str]:
    """Image inputs that differ between a commit and HEAD; empty when both build one image."""
    if not git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", check=False):
        return [f"everything ({commit[:12]} is not in this repository)"]
    return git("diff", "--name-only", commit, "HEAD", "--", *IMAGE_INPUTS).split()


# --- Preflight, the registry, the release commit and Argo CD ----------------------------------


def preflight(c, env: Environment, tools: list[str], fetch=(), problems=()) -> None:
    """Stop before any change while something would stop the run, listing every problem with
    its fix. Read-only, so a dry run checks it too."""
    print("== Preflight")
    cli = CLI[env.cloud]
    missing = [tool for tool in dict.fromkeys(["docker", cli, *tools]) if not shutil.which(tool)]
    problems = [
        *problems,
        *(f"`{tool}` is not installed. Fix: {install(tool)}" for tool in missing),
    ]
    if changes := image.uncommitted_changes():
        problems.append(
            f"the working tree has uncommitted changes ({', '.join(changes[:5])}); a release "
            "ships commits only. Fix: commit or stash them"
        )
    if git("branch", "--show-current") != env.branch:
        problems.append(f"{env.label} deploys from {env.branch}. Fix: git switch {env.branch}")
    problems += remote_problems(c, env, fetch)
    whoami, fix = WHOAMI[env.cloud]
    if cli not in missing and (found := run(c, whoami)).failed:
        problems.append(f"{cli} has no working credentials ({said(found)}). Fix: {fix}")
    if problems:
        raise Exit(
            "\n  - ".join([f"error: {len(problems)} problem(s), nothing changed:", *problems]), 1
        )


def remote_problems(c, env: Environment, fetch=()) -> list[str]:
    """The remote is the repository Argo CD pulls from, and the branch is level with it."""
    pulled, pushed = env.repo_url, git("remote", "get-url", env.remote, check=False)
    if repository_id(pulled) != repository_id(pushed):
        return [
            f"Argo CD ({env.application}) pulls {pulled}, but `{env.remote}` is "
            f"{pushed or 'not a git remote'}. Fix: set repoURL in kustomize/argocd/base/source.yaml"
        ]
    if (fetched := run(c, ["git", "fetch", "--quiet", env.remote, env.branch, *fetch])).failed:
        return [f"cannot fetch {env.tracking} ({said(fetched)}). Fix: check access to {pushed}"]
    ahead, behind = git("rev-list", "--left-right", "--count", f"HEAD...{env.tracking}").split()
    if ahead != "0" or behind != "0":
        return [
            f"HEAD is {ahead} commit(s) ahead of {env.tracking} and {behind} behind; a "
            "release ships what the remote has. Fix: git pull --rebase, git push, then run again"
        ]
    return []


def repository_id(url: str) -> str:
    """host/owner/name of a git URL (https, ssh, scp-like), or the real path of a local one."""
    url = url.strip().removeprefix("file://").removesuffix("/").removesuffix(".git")
    if match := re.fullmatch(r"(?:\w+://)?(?:[^@/]+@)?([^:/]+)[:/](.+)", url):
        return f"{match[1].lower()}/{match[2]}"
    return os.path.realpath(url) if url else ""


def login(c, env: Environment, ref: ImageRef, dry_run: bool) -> None:
    """Short-lived Docker CLI credentials: doctl's, or aws's password on docker's stdin."""
    login = "doctl registry login --expiry-seconds 1800"
    if env.cloud == "aws":
        password = f"aws ecr get-login-password --region {ref.region}"
        login = f"{password} | docker login --username AWS --password-stdin {ref.registry}"
    run(c, login, dry_run, failure=f"cannot log in to {ref.registry}")


def ship(c, env: Environment, ref: ImageRef, subject: str, dry_run: bool, ask="", **trailers):
    """Pin `ref` in the overlay (shown as a diff), commit that file alone and push it to the
    environment's branch: the commit ("" in a dry run)."""
    print("== Overlay, commit and push")
    before = (REPO_ROOT / env.overlay).read_text()
    after = set_image(before, ref)
    names = (f"a/{env.overlay}", f"b/{env.overlay}")
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), *names, lineterm=""):
        print(f"    {line}")
    if ask and not dry_run and not confirm(ask):
        raise Exit(f"{env.label} unchanged (the answer was not yes)", code=1)
    trailers = {"Environment": f"{env.cloud}/{env.name}", "Image": ref, **trailers}
    trailers = [f"--trailer={key}: {value}" for key, value in trailers.items()]
    if not dry_run:
        (REPO_ROOT / env.overlay).write_text(after)
    run(c, ["git", "commit", "--quiet", "-m", subject, *trailers, env.overlay], dry_run, "commit")
    push = ["git", "push", "--quiet", env.remote, f"HEAD:refs/heads/{env.branch}"]
    if run(c, push, dry_run).failed:  # someone pushed meanwhile: put the release commit on top
        print(f"  {env.tracking} moved on; rebasing the release commit onto it")
        pull = ["git", "pull", "--rebase", "--quiet", env.remote, env.branch]
        if (rebased := run(c, pull)).failed:
            git("rebase", "--abort", check=False)
            raise Exit(
                f"error: cannot rebase the release commit onto {env.tracking} ({said(rebased)})"
                "; it is committed here, not pushed. Fix: git pull --rebase, resolve, git push",
                code=1,
            )
        run(c, push, failure="git push")
    return "" if dry_run else git("rev-parse", "HEAD")


@contextlib.contextmanager
def cluster_access(c, env: Environment, ref: ImageRef | None, dry_run=False):
    """Credentials for the environment's cluster in a throwaway kubeconfig: its variables."""
    with tempfile.TemporaryDirectory(prefix="todo-kube-") as tmp:
        kube = {"KUBECONFIG": f"{tmp}/config"}
        save = ["doctl", "kubernetes", "cluster", "kubeconfig", "save", env.cluster]
        save += ["--expiry-seconds", "3600"]
        if env.cloud == "aws":  # in the ECR repository's region: terraform puts both there
            save = ["aws", "eks", "update-kubeconfig", "--name", env.cluster, "--region"]
            save += [ref.region if ref else "<region>", "--kubeconfig", kube["KUBECONFIG"]]
        why = f"no credentials for cluster {env.cluster} (is release.cluster_name right?)"
        run(c, save, dry_run, failure=why, env=kube)
        yield kube


def application(c, env: Environment, kube: dict) -> dict:
    """The Argo CD Application's status, as kubectl reads it."""
    get = [*env.kubectl, "get", "application", env.application, "--output", "json"]
    got = run(c, get, failure=f"cannot read Application {env.application}", env=kube)
    return json.loads(got.stdout).get("status", {})


def rollout(c, env: Environment, ref: ImageRef, commit: str, timeout: int, dry_run: bool):
    """Until Argo CD reports the commit synced and the app healthy, within `timeout` seconds;
    stop at once when the sync failed."""
    print("== Rollout")
    see = f"See `invoke argocd.status {env.options}`; `invoke rollback {env.options}` goes back"
    with cluster_access(c, env, ref, dry_run) as kube:
        # Argo CD polls Git every few minutes; this annotation makes it look now.
        refresh = ["annotate", "application", env.application, "argocd.argoproj.io/refresh=normal"]
        if "NotFound" in run(c, [*env.kubectl, *refresh, "--overwrite"], dry_run, env=kube).stderr:
            apps = f"--stack {env.cloud}/apps --env {env.name}"  # it waits for a pinned release
            raise Exit(
                f"error: Application {env.application} does not exist yet; the apps stack "
                "creates it once the overlay pins a release, as it now does. Fix: invoke "
                f"tf.plan {apps}, then invoke tf.apply {apps}",
                code=1,
            )
        deadline = time.monotonic() + timeout
        for path, wanted in (
            ("operationState.syncResult.revision", commit or "<release-commit>"),
            ("health.status", "Healthy"),
        ):
            left = max(1, round(deadline - time.monotonic()))
            wait = [
                "wait",
                "application",
                env.application,
                f"--for=jsonpath={{.status.{path}}}={wanted}",
            ]
            waited = run(c, [*env.kubectl, *wait, f"--timeout={left}s"], dry_run, env=kube)
            status = {} if dry_run else application(c, env, kube)
            operation = status.get("operationState", {})
            if operation.get("phase") in ("Failed", "Error"):
                why = operation.get("message") or operation["phase"]
                raise Exit(f"error: Argo CD failed to sync {ref.short}: {why}. {see}", code=1)
            if waited.failed:
                late = f"did not run {ref.short} Synced and Healthy within {timeout} s"
                raise Exit(f"error: {env.application} {late}. {see}", code=1)
    print(f"  ok  {env.application} is Synced and Healthy with {ref.short}" * (not dry_run))


def app_platform_release(c, env: Environment, ref: ImageRef, dry_run: bool) -> None:
    """Pin every component of the App Platform app to the image's digest with `doctl apps
    update --wait`, which returns once the deployment (after its PRE_DEPLOY migrate) is live."""
    print("== App Platform")
    listed = run(c, "doctl apps list --format ID,Spec.Name --no-header", dry_run, "doctl")
    app_id = dict(line.split()[::-1] for line in listed.stdout.splitlines()).get(env.cluster)
    if not app_id and not dry_run:
        raise Exit(
            f"error: no App Platform app {env.cluster}. Fix: invoke tf.plan --stack "
            "do/app-platform --env stage, then invoke tf.apply with the same options (or set "
            "release.cluster_name in invoke.yaml)",
            code=1,
        )
    app_id = app_id or "<app-id>"
    got = run(c, f"doctl apps spec get {app_id} --format json", dry_run, "doctl apps spec get")
    spec = json.loads(got.stdout or "{}")
    for part in (part for kind in ("services", "workers", "jobs") for part in spec.get(kind, [])):
        part["image"].pop("tag", None)  # App Platform takes a tag or a digest
        part["image"]["digest"] = ref.digest
    update, spec = f"doctl apps update {app_id} --wait --spec -", io.StringIO(json.dumps(spec))
    run(c, update, dry_run, f"App Platform did not deploy {ref.short}", in_stream=spec)


def check_running(c, env: Environment) -> None:
    """What only the running cloud can prove, after the first apply and release: every check
    runs, each failure says what it said, and any failure exits 1."""
    print(f"check {env.label}: the running environment")
    for tool in ("git", CLI[env.cloud], "kubectl", "curl"):
        require(tool, install(tool))
    docs = k8s.documents(k8s.render(env.app["spec"]["source"]["path"].removeprefix("kustomize/")))
    (ingress,) = [doc for doc in docs if doc["kind"] == "Ingress"]
    todo, host = ingress["metadata"]["namespace"], ingress["spec"]["rules"][0]["host"]
    argo, ready = (
        (env.app["metadata"]["namespace"], "application", env.application),
        "--for=condition=Ready",
    )
    checks = {  # what: kubectl wait's namespace and arguments
        "Argo CD: Synced": (*argo, "--for=jsonpath={.status.sync.status}=Synced"),
        "Argo CD: Healthy": (*argo, "--for=jsonpath={.status.health.status}=Healthy"),
    }
    for secret in (tls["secretName"] for tls in ingress["spec"].get("tls", [])):
        # cert-manager names the Certificate after its TLS Secret
        checks[f"certificate {secret} Ready (cert-manager)"] = (todo, "certificate", secret, ready)
    for name in (doc["metadata"]["name"] for doc in docs if doc["kind"] == "ExternalSecret"):
        checks[f"ExternalSecret {name} synced"] = (todo, "externalsecret", name, ready)
    url = f"https://{host}/readyz"  # the app with its database and broker, through TLS
    problems = []
    with cluster_access(c, env, env.pinned()) as kube:
        for name, (namespace, *what) in checks.items():
            wait = ["kubectl", "--namespace", namespace, "wait", *what, "--timeout=60s"]
            if (result := run(c, wait, env=kube)).failed:
                problems.append(f"{name}: {said(result)}")
            else:
                print(f"  ok  {name}")
    curl = ["curl", "--fail", "--silent", "--show-error", "--max-time", "15", "--output"]
    if (result := run(c, [*curl, os.devnull, url])).failed:
        problems.append(f"{url}: {said(result)} (DNS to the load balancer, TLS, the app)")
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
    "dry_run": "check everything, print every command that would change something; run none",
    "yes": "do not ask before changing prod (in CI the GitHub environment approves)",
    "check": "change nothing: check the running environment (Argo CD health, certificate, "
    "ExternalSecret, a request through the public URL); exit 1 on any problem",
    "to": "this recorded tag (a commit SHA prefix) instead of the previous image",
}


def repin(c, env, ref, subject, wait, timeout, dry_run, ask, **trailers) -> None:
    """Promote or roll back (logged in): pin an image the registry holds at the recorded digest."""
    reference = f"{ref.repository}:{ref.tag}"
    show(image.inspect_command(reference), would=dry_run)
    if not dry_run and (digest := image.remote_digest(c, reference)) != ref.digest:
        now = f"now points at {digest}" if digest else "is gone"
        raise Exit(f"error: {reference} {now}, not the recorded {ref.digest}", code=1)
    print(f"  ok  the registry holds {reference} at the recorded digest" * (not dry_run))
    commit = ship(c, env, ref, subject, dry_run, ask, **trailers)
    finish(c, env, ref, commit, wait, timeout, dry_run, subject.split()[0])


def finish(c, env, ref, commit, wait, timeout, dry_run, done) -> None:
    """After the push: the rollout with --wait, else how to watch it; then what was done."""
    if wait:
        rollout(c, env, ref, commit, int(timeout), dry_run)
    else:
        print(f"  not waiting (pass --wait); watch it: invoke argocd.status {env.options}")
    print(f"\n{done} {ref}" + " (dry run: nothing changed)" * dry_run)


@task(help={key: text for key, text in HELP.items() if key != "to"}, positional=[])
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
        return check_running(c, target)
    if env == PROD:
        return promote(c, target, wait, timeout, dry_run, yes)
    tests, settings = c.config.release.test_command, c.config.release
    tools = ([] if skip_tests else shlex.split(tests)[:1]) + ["kubectl"] * wait
    repository = settings.image_repository[target.cloud]
    problems = []
    if not re.fullmatch(rf"{REGISTRY[target.cloud]}/[\w./-]+", repository):
        output = f"terraform -chdir=terraform/{target.cloud}/stacks/shared output image_repository"
        what = repr(repository) if repository else "unset"
        fix = f"Fix: set it in invoke.yaml to `{output}`"
        problems.append(f"release.image_repository.{target.cloud} is {what}. {fix}")
    preflight(c, target, tools, problems=problems)
    current, head = target.pinned(), git("rev-parse", "HEAD")
    if current and current.is_release and not image_input_changes(current.tag):
        inputs = ", ".join(IMAGE_INPUTS)
        return print(f"Nothing to deploy: it runs {current.short}, built from HEAD's {inputs}.")
    print("== Tests")
    if not skip_tests and run(c, tests, dry_run, hide=None).failed:
        raise Exit(f"error: the tests failed; nothing was deployed. Fix: make `{tests}` pass", 1)
    print("== Image")
    build = [settings.platforms, settings.cache_from, settings.cache_to]
    login(c, target, ImageRef(repository, head, ""), dry_run)
    if dry_run:
        reference = f"{repository}:{head}"
        run(c, image.inspect_command(reference), dry=True)  # a tag found is reused
        run(c, image.push_command(reference, "<metadata-file>", *build), dry=True)
        ref = ImageRef(repository, head, "<pushed-digest>")
    else:
        tag, digest, built = image.publish(c, repository, *build, show=show)
        ref = ImageRef(repository, tag, digest)
        print(f"  ok  {'pushed' if built else 'in the registry already (built once per commit)'}")
    subject = f"Deploy {ref.short} to {target.label}"
    if target.cloud == "do" and settings.do_stage == "app-platform":
        app_platform_release(c, target, ref, dry_run)  # the overlay still records it, for prod
        ship(c, target, ref, f"{subject} (App Platform)", dry_run)
        return print(f"\nDeployed {ref}" + " (dry run: nothing changed)" * dry_run)
    commit = ship(c, target, ref, subject, dry_run)
    finish(c, target, ref, commit, wait, timeout, dry_run, "Deployed")


def promote(c, env: Environment, wait: bool, timeout: int, dry_run: bool, yes: bool) -> None:
    """Prod: the image stage runs, read from stage's branch, when HEAD holds the same code."""
    stage = environment(c, STAGE, env.cloud)
    preflight(c, env, ["cosign", *["kubectl"] * wait], fetch=[stage.branch])
    ref = stage.pinned(stage.tracking)
    if not ref or not ref.is_release:
        fix = f"Fix: invoke deploy {stage.options}"
        raise Exit(
            f"error: {stage.tracking} records no deployed image for {stage.label} ({ref}). {fix}", 1
        )
    if differing := image_input_changes(ref.tag):
        raise Exit(
            f"error: {stage.label} does not run this commit: its image was built from "
            f"{ref.tag[:12]}, and HEAD differs in {', '.join(differing[:8])}. Fix: deploy this "
            f"code to stage first (merge it into {stage.branch}), then promote",
            code=1,
        )
    print(f"  ok  {stage.label} runs {ref}, built from HEAD's code: promoting it, no rebuild")
    if env.pinned() == ref:
        return print(f"Nothing to promote: it runs {ref.short} already.")
    subject, ask = f"Promote {ref.short} to {env.label}", f"Promote {ref} to {env.label}?"
    stage_trailer = {"Promoted-from": f"{stage.cloud}/{stage.name}"}
    login(c, env, ref, dry_run)
    signed = f"{ref.repository}@{ref.digest}"
    if problem := image.verify(c, signed, env.repo_url, stage.branch, dry_run, show):
        raise Exit(f"error: {env.label} runs only images CD built here: {problem}", code=1)
    if not dry_run:
        signer = "is signed by the Deploy workflow, its provenance names this repo"
        print(f"  ok  {ref.digest[:19]}... {signer}")
    repin(c, env, ref, subject, wait, timeout, dry_run, "" if yes else ask, **stage_trailer)


def history(env: Environment) -> list[tuple[str, str, ImageRef, str]]:
    """(commit, date, image, the image a rollback replaced) for each release the overlay
    recorded, newest first: the file's git log, with the commits' trailers."""
    replaced = f"%(trailers:key={ROLLED_BACK_FROM},valueonly,separator=)"
    records = []
    for line in git("log", f"--format=%H %cs {replaced}", "--", env.overlay).splitlines():
        commit, date, *abandoned = line.split()
        if (ref := env.pinned(commit)) and ref.is_release:  # else the template's placeholder
            records.append((commit, date, ref, "".join(abandoned)))
    return records


ROLLBACK_HELP = {key: HELP[key] for key in ("cloud", "wait", "timeout", "dry_run", "to")}


@task(positional=[], help={**ROLLBACK_HELP, "env": "stage or prod", "yes": "do not ask for prod"})
def rollback(c, env, cloud="", to="", wait=False, timeout=600, dry_run=False, yes=False):
    """Re-point an environment at the image it ran before (the overlay's git history)."""
    target = environment(c, env, cloud)
    preflight(c, target, ["kubectl"] * wait)
    print("== History")
    current, records = target.pinned(), history(target)
    abandoned = {replaced for *_, replaced in records}
    for commit, date, ref, _ in records[:10]:
        marks = "  (current)" * (ref == current) + "  (a rollback replaced it)" * (
            str(ref) in abandoned
        )
        print(f"  {date} {commit[:12]}  {ref.short}{marks}")
    refs = list(dict.fromkeys(ref for _, _, ref, _ in records))  # newest first, once each
    if to:
        matches = [ref for ref in refs if len(to) >= 7 and ref.tag.startswith(to)]
    else:  # the newest image before the current one that no rollback abandoned
        matches = [ref for ref in refs if ref != current and str(ref) not in abandoned][:1]
    if len(matches) != 1:
        nothing = "the overlay's history records no earlier image to roll back to"
        raise Exit(
            f"error: --to {to} matches {len(matches)} recorded images"
            if to
            else f"error: {nothing}",
            1,
        )
    (ref,) = matches
    print(f"  ok  from {current.short if current else 'nothing recorded'} back to {ref.short}")
    ask = f"Roll {target.label} back to {ref}?" if env == PROD and not yes else ""
    subject = f"Roll back {target.label} to {ref.short}"
    login(c, target, ref, dry_run)
    repin(c, target, ref, subject, wait, timeout, dry_run, ask, **{ROLLED_BACK_FROM: current})


@task(help={"env": "stage or prod", "cloud": HELP["cloud"]}, positional=[])
def status(c, env, cloud=""):
    """Argo CD's view of an environment next to Git's: sync, health, images (exit 1 if apart)."""
    target = environment(c, env, cloud)
    for tool in ("git", CLI[target.cloud], "kubectl"):
        require(tool, install(tool))
    print(f"{target.application}: {target.label}, cluster {target.cluster}")
    run(c, ["git", "fetch", "--quiet", target.remote, target.branch], failure="git fetch")
    tip, wanted = git("rev-parse", target.tracking), target.pinned(target.tracking)
    with cluster_access(c, target, wanted) as kube:
        app = application(c, target, kube)
    sync, health = app.get("sync", {}), app.get("health", {}).get("status", "Unknown")
    operation, images = app.get("operationState", {}), app.get("summary", {}).get("images", [])
    unhealthy = [
        f"{r['kind']}/{r['name']} {r['health']['status']} ({r['health'].get('message', '')})"
        for r in app.get("resources", [])
        if r.get("health", {}).get("status", "Healthy") != "Healthy"
    ]
    behind = "" if sync.get("revision") == tip else f" (Git is at {tip[:12]})"
    for name, value in (
        ("git", f"{target.tracking} {tip[:12]} pins {wanted}"),
        ("sync", f"{sync.get('status', 'Unknown')} at {sync.get('revision', '?')[:12]}{behind}"),
        ("health", health),
        ("last sync", f"{operation.get('phase', 'none')}: {operation.get('message', '')}"),
        ("images", ", ".join(images) or "none reported"),
        ("unhealthy", "; ".join(unhealthy) or "none"),
    ):
        print(f"  {name:10} {value}")
    settled = operation.get("phase") not in ("Running", "Terminating") and not behind
    in_step = str(wanted) in images and (sync.get("status"), health) == ("Synced", "Healthy")
    print(
        f"\n{target.application} is {'in step' if in_step and settled else 'NOT in step'} with Git."
    )
    if not (in_step and settled):
        raise Exit(code=1)


argocd = Collection("argocd")
argocd.add_task(status)
