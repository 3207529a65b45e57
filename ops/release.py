"""Releases, the GitOps way: `invoke deploy`, `invoke rollback`, `invoke argocd.status`.

A release changes one thing: the `todo` image entry (newName, newTag = the commit SHA the image
was built from, digest) of an environment's overlay, in a commit of its own pushed to the branch
its Argo CD Application follows (stage: develop, prod: main). Stage builds HEAD once; prod
promotes the image stage runs; rollback goes back along the overlay's git history. ruamel.yaml
edits the entry and keeps the file's comments. Every command is printed as it runs; a dry run
prints those that would change something instead. Settings: invoke.yaml's `release` section.
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
from typing import NamedTuple

from invoke import Collection, task
from invoke.exceptions import Exit
from ruamel.yaml import YAML
from ruamel.yaml.util import load_yaml_guess_indent

from ops import image, k8s
from ops.tf import CLOUDS, ENVIRONMENTS
from ops.tools import REPO_ROOT, UV_FIX, confirm, git, require, run, said

STAGE, PROD = ENVIRONMENTS
IMAGE_INPUTS = (*image.CONTEXT_FILES, "app")  # two commits with the same inputs, one image
ECR = r"\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com"
IN_STEP = ("Synced", "Healthy")  # what Argo CD reports of an Application in step with Git
ROLLED_BACK_FROM = "Rolled-back-from"  # commit trailer: the image a rollback replaced
REPO_URL = "set repoURL in kustomize/argocd/base/source.yaml"
SYNC = "A release ships what the remote has. Fix: git pull --rebase, git push, then run again"
FIX = {"uv": UV_FIX, "cosign": image.COSIGN_FIX, "docker": image.DOCKER_FIX}


class Cloud(NamedTuple):
    cli: str
    registry: str  # what its image repositories match
    whoami: str  # a read-only call that fails without credentials, and its fix
    auth: str
    login: str  # Docker CLI credentials for {registry}
    kubeconfig: str  # the cluster's credentials, into $KUBECONFIG


CLOUD = {
    "do": Cloud(
        "doctl",
        r"registry\.digitalocean\.com/[a-z0-9-]+/[\w./-]+",
        "doctl account get --format Email --no-header",
        "Fix: run `doctl auth init`",
        "doctl registry login --expiry-seconds 1800",
        "doctl kubernetes cluster kubeconfig save {cluster} --expiry-seconds 3600",
    ),
    "aws": Cloud(  # the cluster is in the ECR repository's region: terraform puts both there
        "aws",
        rf"{ECR}/[\w./-]+",
        "aws sts get-caller-identity --query Arn --output text",
        "Fix: run `aws sso login`",
        "aws ecr get-login-password --region {region}"
        " | docker login --username AWS --password-stdin {registry}",
        "aws eks update-kubeconfig --name {cluster} --region {region}",
    ),
}


def fix(tool: str) -> str:
    return FIX.get(tool, f"install {tool} (docs/deploy.md, 'Set it up once', links it)")


def region(repository: str) -> str:
    """ECR's region, which terraform gives the cluster too."""
    return (re.match(ECR, repository) or [0, "<region>"])[1]


class ImageRef(NamedTuple):
    repository: str
    tag: str
    digest: str

    __str__ = lambda self: f"{self.repository}:{self.tag}@{self.digest}"  # noqa: E731
    short = property(lambda self: f"{image.IMAGE_NAME} {self.tag[:12]}")
    # Tagged with a commit and pinned by digest: what a release records.
    is_release = property(lambda self: bool(image.COMMIT_SHA.fullmatch(self.tag) and self.digest))


def overlay(kustomization: str):
    """ruamel.yaml at the file's own indentation, the file, and its `todo` image entry."""
    _, sequence, offset = load_yaml_guess_indent(kustomization)
    yaml = YAML()  # round-trip mode: comments, key order and quotes are kept
    yaml.indent(mapping=2, sequence=sequence or 2, offset=offset or 0)
    yaml.preserve_quotes, yaml.width = True, 4096
    document = yaml.load(kustomization)
    entries = document.get("images") or []
    return yaml, document, next((e for e in entries if e.get("name") == image.IMAGE_NAME), None)


def image_entry(kustomization: str) -> ImageRef | None:
    entry = overlay(kustomization)[2]
    return entry and ImageRef(*(str(entry.get(k, "")) for k in ("newName", "newTag", "digest")))


def set_image(kustomization: str, ref: ImageRef) -> str:
    """The kustomization with its `todo` entry pinned to `ref`, and nothing else changed."""
    yaml, document, entry = overlay(kustomization)
    if entry is None:
        raise Exit(f"error: the overlay has no `images:` entry named {image.IMAGE_NAME}", 1)
    for key, value in (("newName", ref.repository), ("newTag", ref.tag), ("digest", ref.digest)):
        if key in entry:
            entry[key] = value
        else:  # before the entry's last key, which holds the blank line or comment after it
            entry.insert(len(entry) - 1, key, value)
    yaml.dump(document, edited := io.StringIO())
    return edited.getvalue()


class Environment(NamedTuple):
    """A cloud environment as its Argo CD Application (rendered) describes it."""

    cloud: str
    name: str
    app: dict
    cluster: str
    remote: str

    label = property(lambda self: f"{self.name} ({self.cloud})")
    options = property(lambda self: f"--env {self.name} --cloud {self.cloud}")
    cli = property(lambda self: CLOUD[self.cloud])
    application = property(lambda self: self.app["metadata"]["name"])
    kubectl = property(lambda self: ["kubectl", "--namespace", self.app["metadata"]["namespace"]])
    source = property(lambda self: self.app["spec"]["source"])
    branch = property(lambda self: self.source["targetRevision"])
    tracking = property(lambda self: f"{self.remote}/{self.branch}")
    overlay = property(lambda self: f"{self.source['path']}/kustomization.yaml")

    def pinned(self, revision: str = "") -> ImageRef | None:
        """The image the overlay pins in the working tree, or at a git revision."""
        if revision:
            return image_entry(git("show", f"{revision}:{self.overlay}"))
        return image_entry((REPO_ROOT / self.overlay).read_text())


def environment(c, env: str, cloud: str) -> Environment:
    cloud, settings = cloud or c.config.release.cloud, c.config.release
    for value, choices, option in ((env, ENVIRONMENTS, "env"), (cloud, CLOUDS, "cloud")):
        if value not in choices:
            raise Exit(f"error: --{option} must be one of {', '.join(choices)}, not {value!r}", 2)
    os.chdir(REPO_ROOT)  # the paths tasks run and print are the repository's
    docs = k8s.documents(k8s.render(f"argocd/{cloud}/{env}"))
    (app,) = (doc for doc in docs if doc["kind"] == "Application")
    return Environment(cloud, env, app, settings.cluster_name.format(env=env), settings.remote)


def image_input_changes(commit: str) -> list[str]:
    """Image inputs that differ between a commit and HEAD; empty when both build one image."""
    if not git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", check=False):
        return [f"everything ({commit[:12]} is not in this repository)"]
    return git("diff", "--name-only", commit, "HEAD", "--", *IMAGE_INPUTS).split()


def preflight(c, env: Environment, tools: list[str], fetch=(), problems=()) -> None:
    """Stop before any change while something would stop the run, listing every problem with
    its fix. Read-only, so a dry run checks it too."""
    print("== Preflight")
    missing = [
        t for t in dict.fromkeys(["git", "docker", env.cli.cli, *tools]) if not shutil.which(t)
    ]
    problems = [*problems, *(f"`{tool}` is not installed. Fix: {fix(tool)}" for tool in missing)]
    if uncommitted := image.uncommitted_changes():
        problems.append(uncommitted)
    if git("branch", "--show-current") != env.branch:
        problems.append(f"{env.label} deploys from {env.branch}. Fix: git switch {env.branch}")
    pulled, pushed = env.source["repoURL"], git("remote", "get-url", env.remote, check=False)
    fetch = ["git", "fetch", "--quiet", env.remote, env.branch, *fetch]
    # One repository however each URL spells it (https, ssh, scp-like), or one local path.
    spelled = [image.https_url(url) or url.removeprefix("file://") for url in (pulled, pushed)]
    if len({url.lower() for url in spelled}) > 1:
        where = f"`{env.remote}` is {pushed or 'no git remote'}"
        problems.append(f"Argo CD ({env.application}) pulls {pulled}, but {where}. Fix: {REPO_URL}")
    elif (fetched := run(c, fetch)).failed:
        problems.append(f"cannot fetch {env.tracking} ({said(fetched)}). Fix: check access")
    elif (count := git("rev-list", "--left-right", "--count", f"HEAD...{env.tracking}")) != "0\t0":
        ahead, behind = count.split()
        problems.append(
            f"HEAD is {ahead} commit(s) ahead of {env.tracking}, {behind} behind. {SYNC}"
        )
    if env.cli.cli not in missing and (found := run(c, env.cli.whoami)).failed:
        problems.append(f"{env.cli.cli} has no working credentials ({said(found)}). {env.cli.auth}")
    if problems:
        problems = [f"error: {len(problems)} problem(s), nothing changed:", *problems]
        raise Exit("\n  - ".join(problems), code=1)


def login(c, env: Environment, repository: str, dry_run: bool) -> None:
    """Docker CLI credentials for the registry of `repository`."""
    registry = repository.split("/", 1)[0]
    login = env.cli.login.format(registry=registry, region=region(repository))
    run(c, login, dry_run, failure=f"cannot log in to {registry}")


def still_held(c, env: Environment, ref: ImageRef, dry_run: bool) -> None:
    """Log in, then stop unless the registry still holds the tag at the recorded digest: what
    promote and rollback re-pin."""
    login(c, env, ref.repository, dry_run)
    reference = f"{ref.repository}:{ref.tag}"
    digest = image.remote_digest(c, reference, dry_run)
    if not dry_run and digest != ref.digest:
        now = f"now points at {digest}" if digest else "is gone"
        raise Exit(f"error: {reference} {now}, not the recorded {ref.digest}", code=1)
    print(f"  ok  the registry holds {reference} at the recorded digest" * (not dry_run))


@contextlib.contextmanager
def cluster(c, env: Environment, dry_run=False):
    """The cluster's credentials in a throwaway kubeconfig: the variables that select it."""
    with tempfile.TemporaryDirectory(prefix="todo-kube-") as tmp:
        kube = {"KUBECONFIG": f"{tmp}/config"}
        save = env.cli.kubeconfig.format(cluster=env.cluster, region=region(env.pinned()[0]))
        why = f"no credentials for cluster {env.cluster} (is release.cluster_name right?)"
        run(c, save, dry_run, failure=why, env=kube)
        yield kube


def release(c, env, ref, subject, dry_run, wait, timeout, ask="", **trailers) -> None:
    """Pin `ref` in the overlay (shown as a diff), commit that file alone, push it to the
    environment's branch; with --wait, `kubectl wait` until Argo CD runs it."""
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
            git("rebase", "--abort", check=False)  # leave the checkout as it was, not mid-rebase
            fix = "committed here, not pushed. Fix: git pull --rebase, resolve, git push"
            raise Exit(f"error: cannot rebase the release commit ({said(rebased)}); {fix}", 1)
        run(c, push, failure="git push")
    if wait:
        print("== Rollout")
        commit = "<release-commit>" if dry_run else git("rev-parse", "HEAD")
        apps = f"--stack {env.cloud}/apps --env {env.name}"  # it waits for a pinned release
        absent = f"cannot refresh Application {env.application}; the apps stack creates it once "
        absent += f"the overlay pins a release. Fix: invoke tf.plan {apps}, then invoke tf.apply"
        late = f"{env.application} did not run {ref.short} Synced and Healthy within {timeout} s "
        late += f"(invoke argocd.status {env.options} says why; invoke rollback goes back)"
        # Argo CD polls Git every few minutes; the annotation makes it look now.
        refresh = ["annotate", "application", env.application, "argocd.argoproj.io/refresh=normal"]
        wait = [*env.kubectl, "wait", "application", env.application, f"--timeout={timeout}s"]
        synced = f"--for=jsonpath={{.status.operationState.syncResult.revision}}={commit}"
        healthy = "--for=jsonpath={.status.health.status}=Healthy"
        with cluster(c, env, dry_run) as kube:
            run(c, [*env.kubectl, *refresh, "--overwrite"], dry_run, absent, env=kube)
            for condition in (synced, healthy):
                run(c, [*wait, condition], dry_run, late, env=kube)
        print(f"  ok  {env.application} is Synced and Healthy with {ref.short}" * (not dry_run))
    elif wait is not None:  # None: App Platform, whose update waited already
        print(f"  not waiting (pass --wait); watch it: invoke argocd.status {env.options}")
    print(f"\n{subject}: {'planned (dry run: nothing changed)' if dry_run else 'done'}.")


def look(c, env: Environment, serving=False) -> None:
    """Argo CD's view of the environment next to Git's; `serving` adds what only the running
    cloud can prove: its certificates and ExternalSecrets Ready, the public URL answering."""
    for tool in ("git", env.cli.cli, "kubectl", *["curl"] * serving):
        require(tool, fix(tool))
    print(f"{env.application}: {env.label}, cluster {env.cluster}")
    run(c, ["git", "fetch", "--quiet", env.remote, env.branch], failure="git fetch")
    tip, wanted, problems = git("rev-parse", env.tracking), env.pinned(env.tracking), []
    docs = k8s.documents(k8s.render(env.source["path"].split("overlays/")[1]))
    (ingress,) = [doc for doc in docs if doc["kind"] == "Ingress"]
    # cert-manager names each Certificate after its TLS Secret
    ready = [f"certificate/{tls['secretName']}" for tls in ingress["spec"].get("tls", [])]
    secrets = [doc["metadata"]["name"] for doc in docs if doc["kind"] == "ExternalSecret"]
    ready += [f"externalsecret/{name}" for name in secrets]
    with cluster(c, env) as kube:
        get = [*env.kubectl, "get", "application", env.application, "--output", "json"]
        got = run(c, get, failure=f"cannot read Application {env.application}", env=kube)
        for what in ready * serving:
            wait = ["--namespace", ingress["metadata"]["namespace"], "wait", what, "--timeout=60s"]
            if (waited := run(c, ["kubectl", *wait, "--for=condition=Ready"], env=kube)).failed:
                problems.append(f"{what} is not Ready: {said(waited)}")
    url = f"https://{ingress['spec']['rules'][0]['host']}/readyz"  # through TLS, to the app
    curl = ["curl", "--fail", "--silent", "--show-error", "--max-time", "15", "--output"]
    if serving and (result := run(c, [*curl, os.devnull, url])).failed:
        problems.append(f"{url}: {said(result)} (DNS to the load balancer, TLS, the app)")
    app = json.loads(got.stdout).get("status", {})
    sync, health = app.get("sync", {}), app.get("health", {}).get("status", "Unknown")
    operation, images = app.get("operationState", {}), app.get("summary", {}).get("images", [])
    unhealthy = [
        f"{r['kind']}/{r['name']} {r['health']['status']} ({r['health'].get('message', '')})"
        for r in app.get("resources", [])
        if r.get("health", {}).get("status", "Healthy") != "Healthy"
    ]
    behind = "" if sync.get("revision") == tip else f" (Git is at {tip[:12]})"
    print(f"  git        {env.tracking} {tip[:12]} pins {wanted}")
    print(f"  sync       {sync.get('status')} at {sync.get('revision', '?')[:12]}{behind}")
    print(f"  health     {health}; unhealthy: {'; '.join(unhealthy) or 'none'}")
    print(f"  last sync  {operation.get('phase', 'none')}: {operation.get('message', '')}")
    print(f"  images     {', '.join(images) or 'none reported'}")
    settled = operation.get("phase") not in ("Running", "Terminating") and not behind
    if not settled or str(wanted) not in images or (sync.get("status"), health) != IN_STEP:
        problems.insert(0, f"Argo CD is not in step with Git (above; {env.application})")
    if problems:
        raise Exit("\n  - ".join([f"error: {env.label}: {len(problems)} problem(s):", *problems]))
    print(f"\n{env.application} is in step with Git" + f" and {url} answers" * serving + ".")


def promote(c, env: Environment, wait: bool, timeout: int, dry_run: bool, yes: bool) -> None:
    """Prod: the image stage runs, read from stage's branch, when HEAD holds the same code."""
    stage = environment(c, STAGE, env.cloud)
    preflight(c, env, ["cosign", *["kubectl"] * wait], fetch=[stage.branch])
    ref = stage.pinned(stage.tracking)
    if not ref or not ref.is_release:
        fix = f"Fix: invoke deploy {stage.options}"
        raise Exit(f"error: {stage.tracking} records no deployed image for {stage.label}. {fix}", 1)
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
    signed = f"{ref.repository}@{ref.digest}"
    if problem := image.verify(c, signed, env.source["repoURL"], stage.branch, dry_run):
        raise Exit(f"error: {env.label} runs only images CD built here: {problem}", code=1)
    print(f"  ok  {ref.digest[:19]}... is signed by the Deploy workflow, provenance: this repo")
    still_held(c, env, ref, dry_run)
    ask = "" if yes else f"Promote {ref} to {env.label}?"
    subject, source = f"Promote {ref.short} to {env.label}", f"{stage.cloud}/{stage.name}"
    release(c, env, ref, subject, dry_run, wait, timeout, ask, **{"Promoted-from": source})


def app_platform(c, env: Environment, ref: ImageRef, dry_run: bool) -> None:
    """Stage on App Platform: every component at the digest. `doctl apps update --wait` returns
    once the deployment (after its PRE_DEPLOY migrate) is live; the overlay still records it,
    for prod's promotion."""
    print("== App Platform")
    listed = run(c, "doctl apps list --format ID,Spec.Name --no-header", dry_run, "doctl")
    app = dict(line.split()[::-1] for line in listed.stdout.splitlines()).get(env.cluster)
    if not app and not dry_run:
        stack = "--stack do/app-platform --env stage"
        fix = f"Fix: invoke tf.plan {stack}, then tf.apply (or set release.cluster_name)"
        raise Exit(f"error: no App Platform app {env.cluster}. {fix}", code=1)
    app = app or "<app-id>"
    got = run(c, f"doctl apps spec get {app} --format json", dry_run, "doctl apps spec get")
    spec = json.loads(got.stdout or "{}")
    for kind in ("services", "workers", "jobs"):
        for part in spec.get(kind, []):
            part["image"].pop("tag", None)  # App Platform takes a tag or a digest
            part["image"]["digest"] = ref.digest
    update, spec = f"doctl apps update {app} --wait --spec -", io.StringIO(json.dumps(spec))
    run(c, update, dry_run, f"App Platform did not deploy {ref.short}", in_stream=spec)


HELP = {
    "env": "stage (build HEAD, push, deploy) or prod (promote the image stage runs)",
    "cloud": "do or aws (default: release.cloud in invoke.yaml)",
    "skip_tests": "do not run the test suite first (CI ran it in an earlier job)",
    "wait": "wait until Argo CD reports the image Synced and Healthy (kubectl wait)",
    "timeout": "seconds each --wait step waits (default 600)",
    "dry_run": "check everything, print every command that would change something; run none",
    "yes": "do not ask before changing prod (in CI the GitHub environment approves)",
    "check": "change nothing: argocd.status, then certificates, ExternalSecrets, the public URL",
}

ROLLBACK_HELP = {key: HELP[key] for key in ("cloud", "wait", "timeout", "dry_run")}
ROLLBACK_HELP["to"] = "this recorded tag (a commit SHA prefix) instead of the previous image"


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
    target, settings = environment(c, env, cloud), c.config.release
    if check:
        return look(c, target, serving=True)
    if env == PROD:
        return promote(c, target, wait, timeout, dry_run, yes)
    tests, repository = settings.test_command, settings.image_repository[target.cloud]
    problems = []
    if not re.fullmatch(target.cli.registry, repository):
        value = repr(repository) if repository else "unset"
        output = f"terraform -chdir=terraform/{target.cloud}/stacks/shared output image_repository"
        problems = [
            f"release.image_repository.{target.cloud} is {value}. Fix: set it to `{output}`"
        ]
    tools = ([] if skip_tests else shlex.split(tests)[:1]) + ["kubectl"] * wait
    preflight(c, target, tools, problems=problems)
    current = target.pinned()
    if current and current.is_release and not image_input_changes(current.tag):
        inputs = ", ".join(IMAGE_INPUTS)
        return print(f"Nothing to deploy: it runs {current.short}, built from HEAD's {inputs}.")
    print("== Tests")
    if not skip_tests and run(c, tests, dry_run, hide=None).failed:
        raise Exit(f"error: the tests failed; nothing was deployed. Fix: make `{tests}` pass", 1)
    print("== Image")
    build = [settings.platforms, settings.cache_from, settings.cache_to]
    login(c, target, repository, dry_run)
    tag, digest, built = image.publish(c, repository, *build, dry=dry_run)
    ref = ImageRef(repository, tag, digest)
    if not dry_run:
        print(f"  ok  {'pushed' if built else 'in the registry already (built once per commit)'}")
    subject = f"Deploy {ref.short} to {target.label}"
    if target.cloud == "do" and settings.do_stage == "app-platform":
        app_platform(c, target, ref, dry_run)
        subject, wait = f"{subject} (App Platform)", None
    release(c, target, ref, subject, dry_run, wait, timeout)


@task(positional=[], help={**ROLLBACK_HELP, "env": "stage or prod", "yes": "do not ask for prod"})
def rollback(c, env, cloud="", to="", wait=False, timeout=600, dry_run=False, yes=False):
    """Re-point an environment at the image it ran before (the overlay's git history)."""
    target = environment(c, env, cloud)
    preflight(c, target, ["kubectl"] * wait)
    print("== History")
    current, refs, abandoned = target.pinned(), [], set()  # newest first
    trailer = f"%(trailers:key={ROLLED_BACK_FROM},valueonly,separator=)"
    for line in git("log", f"--format=%H %cs {trailer}", "--", target.overlay).splitlines():
        commit, date, *replaced = line.split()
        abandoned.update(replaced)
        if (ref := target.pinned(commit)) and ref.is_release:  # else the template's placeholder
            print(f"  {date} {commit[:12]}  {ref.short}" + "  (current)" * (ref == current))
            refs += [ref] * (ref not in refs)
    if to:
        matches = [ref for ref in refs if len(to) >= 7 and ref.tag.startswith(to)]
    else:  # the newest image before the current one that no rollback abandoned
        matches = [ref for ref in refs if ref != current and str(ref) not in abandoned][:1]
    if len(matches) != 1:
        why = "the overlay's history records no earlier image to roll back to"
        raise Exit(f"error: {f'--to {to} matches {len(matches)} recorded images' if to else why}")
    (ref,) = matches
    print(f"  ok  from {current.short if current else 'nothing recorded'} back to {ref.short}")
    ask = f"Roll {target.label} back to {ref}?" if env == PROD and not yes else ""
    still_held(c, target, ref, dry_run)
    subject = f"Roll back {target.label} to {ref.short}"
    release(c, target, ref, subject, dry_run, wait, timeout, ask, **{ROLLED_BACK_FROM: current})


@task(help={"env": "stage or prod", "cloud": HELP["cloud"]}, positional=[])
def status(c, env, cloud=""):
    """Argo CD's view of an environment next to Git's: sync, health, images (exit 1 if apart)."""
    look(c, environment(c, env, cloud))


argocd = Collection("argocd")
argocd.add_task(status)
