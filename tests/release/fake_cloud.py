"""Stand-ins for docker, kustomize, kubectl, terraform, doctl, aws and argocd, for testing
`invoke deploy`, `invoke rollback` and `invoke argocd.status`.

Run through tests/fakes.py, which records every call. The state they share is the world a
release touches: the registry (tags, digests, who is logged in), cloud credentials,
clusters, and each cluster's Argo CD Applications. An Application reports what Argo CD
would after syncing its branch of the test's bare git remote: the image the overlay pins,
Healthy if the registry holds that image (else the pull fails: Degraded), or a stuck or
failed sync when a test asks for one. `kustomize build` runs the real renderer, so the
overlays are really rendered.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from fakes import unexpected  # tests/fakes.py, which runs this file

DOCR = "registry.digitalocean.com"
DOCKER_VERSION = "28.5.1"
NOT_LOGGED_IN = "ERROR: failed to authorize: failed to fetch oauth token: 401 Unauthorized"


def digest_of(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def _option(args: list[str], name: str) -> str:
    """--name=value from an argument list."""
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"--{name}="))


def docker(state: dict, args: list[str], stdin: str | None) -> int:
    registry = state["registry"]
    match args:
        case ["version", "--format", "{{.Server.Version}}"]:
            if not state["docker_engine"]:
                return fail("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")
            print(DOCKER_VERSION)
        case ["buildx", "version"]:
            print("github.com/docker/buildx v0.29.1 a32761a")
        case ["buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"]:
            if reference.split("/")[0] not in registry["logged_in"]:
                return fail(NOT_LOGGED_IN)
            if reference not in registry["images"]:
                return fail(f"ERROR: {reference}: not found")
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": registry["images"][reference],
                "size": 856,
            }
            print(json.dumps(manifest))
        case ["buildx", "build", *options, "--push", _context]:
            reference = _option(options, "tag")
            if reference.split("/")[0] not in registry["logged_in"]:
                return fail(f"ERROR: failed to push {reference}: 401 Unauthorized")
            digest = digest_of(reference, _option(options, "platform"))
            registry["images"][reference] = digest
            Path(_option(options, "metadata-file")).write_text(
                json.dumps({"containerimage.digest": digest, "image.name": reference})
            )
            print(f"#14 exporting to image\n#14 pushing manifest for {reference}@{digest} done")
            if teammate := state.pop("teammate_pushes_during_build", None):
                _teammate_pushes(**teammate)
        case ["login", "--username", "AWS", "--password-stdin", host]:
            if stdin.strip() != state["aws"]["password"]:
                return fail("Error response from daemon: login attempt failed")
            registry["logged_in"].append(host)
            print("Login Succeeded")
        case _:
            return unexpected("docker", args)
    return 0


def _teammate_pushes(clone: str, branch: str) -> None:
    """Someone else pushes to the branch while the release builds."""
    identity = ["-c", "user.name=Teammate", "-c", "user.email=teammate@example.com"]
    for git_args in (
        [*identity, "commit", "--quiet", "--allow-empty", "-m", "A teammate's commit"],
        ["push", "--quiet", "origin", f"HEAD:{branch}"],
    ):
        subprocess.run(["git", "-C", clone, *git_args], check=True)


def kustomize(state: dict, args: list[str], stdin: str | None) -> int:
    match args:
        case ["build", directory]:
            result = subprocess.run(  # the real renderer the test chose
                [*state["real_renderer"], directory],
                capture_output=True,
                text=True,
                env={**os.environ, "PATH": state["real_path"]},
                check=False,
            )
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            return result.returncode
        case _:
            return unexpected("kustomize", args)


def doctl(state: dict, args: list[str], stdin: str | None) -> int:
    if not state["do"]["token"]:
        return fail(
            "Error: Unable to initialize DigitalOcean API client: access token is required. "
            "(hint: run 'doctl auth init')"
        )
    match args:
        case ["account", "get", "--format", "Email", "--no-header"]:
            print(state["do"]["email"])
        case ["registry", "login", "--expiry-seconds", _seconds]:
            state["registry"]["logged_in"].append(DOCR)
            print(f"Logging Docker in to {DOCR}")
        case ["kubernetes", "cluster", "kubeconfig", "save", cluster, "--expiry-seconds", _]:
            if cluster not in state["clusters"]:
                return fail(f"Error: cluster with name {cluster!r} could not be found")
            path = os.environ["KUBECONFIG"]
            _write_kubeconfig(path, f"do-fra1-{cluster}", cluster)
            print(f'Notice: Adding cluster credentials to kubeconfig file found in "{path}"')
            print(f"Notice: Setting current-context to do-fra1-{cluster}")
        case _:
            return unexpected("doctl", args)
    return 0


def aws(state: dict, args: list[str], stdin: str | None) -> int:
    account = state["aws"]
    if not account["credentials"]:
        return fail('Unable to locate credentials. Run "aws configure" to set them.', 253)
    match args:
        case ["sts", "get-caller-identity", "--output", "json"]:
            arn = f"arn:aws:sts::{account['id']}:assumed-role/todo-github-deploy/ci"
            print(json.dumps({"UserId": "AROAEXAMPLE:ci", "Account": account["id"], "Arn": arn}))
        case ["ecr", "get-login-password", "--region", _region]:
            print(account["password"])
        case ["eks", "update-kubeconfig", "--name", cluster, "--region", region, *kubeconfig]:
            path = kubeconfig[1]
            if cluster not in state["clusters"]:
                return fail(
                    "An error occurred (ResourceNotFoundException) when calling the "
                    f"DescribeCluster operation: No cluster found for name: {cluster}.",
                    254,
                )
            context = f"arn:aws:eks:{region}:{account['id']}:cluster/{cluster}"
            _write_kubeconfig(path, context, cluster)
            print(f"Added new context {context} to {path}")
        case _:
            return unexpected("aws", args)
    return 0


def _write_kubeconfig(path: str, context: str, cluster: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": context}}],
    }
    Path(path).write_text(json.dumps(config))  # JSON is YAML too


def terraform(state: dict, args: list[str], stdin: str | None) -> int:
    match args:
        case [chdir, "init", "-input=false", "-reconfigure", backend, key] if chdir.startswith(
            "-chdir="
        ) and backend.startswith("-backend-config="):
            print(
                f"Initializing the backend... ({key})\nTerraform has been successfully initialized!"
            )
        case [chdir, "output", "-raw", name] if chdir.startswith("-chdir="):
            print(state["terraform_outputs"][name], end="")
        case _:
            return unexpected("terraform", args)
    return 0


def kubectl(state: dict, args: list[str], stdin: str | None) -> int:
    config = json.loads(Path(os.environ["KUBECONFIG"]).read_text())
    cluster = config["contexts"][0]["context"]["cluster"]
    applications = state["clusters"][cluster]
    match args:
        case ["--namespace", "argocd", "annotate", "application", name, annotation, "--overwrite"]:
            if name not in applications:
                return fail(f'Error from server (NotFound): applications "{name}" not found')
            applications[name]["annotations"] = [annotation]
            print(f"application.argoproj.io/{name} annotated")
        case ["--namespace", "argocd", "get", "application", name, "--output", "json"]:
            print(json.dumps(_application(state, name, applications[name])))
        case _:
            return unexpected("kubectl", args)
    return 0


def _application(state: dict, name: str, app: dict) -> dict:
    """The Application as Argo CD reports it once it has looked at its branch."""

    def git(*args: str) -> str:
        command = ["git", "--git-dir", app["remote"], *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    revision = git("rev-parse", app["branch"]).strip()
    import yaml  # only here: keeps every other call fast

    overlay = yaml.safe_load(git("show", f"{app['branch']}:{app['path']}/kustomization.yaml"))
    (entry,) = [e for e in overlay["images"] if e["name"] == "todo"]
    image = f"{entry['newName']}:{entry['newTag']}@{entry.get('digest', '')}"
    pulled = state["registry"]["images"].get(f"{entry['newName']}:{entry['newTag']}")
    health, message = ("Healthy", "")
    if pulled != entry.get("digest"):
        health, message = "Degraded", f'Back-off pulling image "{image}"'
    operation = {"phase": "Succeeded", "message": "successfully synced (all tasks run)"}
    if app["behaviour"] == "stuck":  # never syncs: reports what it ran before
        revision, image, health = app["previous_revision"], app["previous_image"], "Progressing"
        message = "Waiting for rollout to finish: 1 old replicas are pending termination..."
        hook = "waiting for completion of hook batch/Job/migrate"
        operation = {"phase": "Running", "message": hook}
    elif app["behaviour"] == "fail":
        health = "Degraded"
        operation = {
            "phase": "Failed",
            "message": "one or more synchronization tasks completed unsuccessfully, reason: "
            "Job has reached the specified backoff limit (batch/Job/migrate)",
        }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "status": {
            "sync": {"status": "Synced", "revision": revision},
            "health": {"status": health},
            "operationState": {**operation, "syncResult": {"revision": revision}},
            "summary": {"images": [image]},
            "resources": [
                {
                    "kind": "Deployment",
                    "name": workload,
                    "health": {"status": health, "message": message},
                }
                for workload in ("web", "worker", "beat")
            ],
        },
    }


def argocd(state: dict, args: list[str], stdin: str | None) -> int:
    match args:
        case ["version", "--client"]:
            print("argocd: v3.1.8+becb020")
        case _:
            return unexpected("argocd", args)
    return 0


HANDLERS = {
    "docker": docker,
    "kustomize": kustomize,
    "kubectl": kubectl,
    "terraform": terraform,
    "doctl": doctl,
    "aws": aws,
    "argocd": argocd,
}
