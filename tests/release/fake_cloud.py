"""Stand-ins for docker, doctl, aws, kubectl and cosign: the cloud a release talks to, which cannot
run here. Run through tests/fakes.py, which records every call; anything else they are asked
fails the test (fakes.unexpected).

The shared state is the world a release touches: the registry (tags, digests, who is logged
in), cloud credentials, and each cluster's Argo CD Applications. An Application reports what
Argo CD would after syncing its branch of the test's bare git remote: the image the overlay
pins, Healthy when the registry holds it, or a stuck sync when a test asks for one.
`kubectl kustomize` is the real renderer. cosign signs as the identity the state names (CD's
unless a test changes it) and verifies against what it signed, with cosign's own messages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from fakes import unexpected  # tests/fakes.py, which runs this file

DOCR = "registry.digitalocean.com"
GITHUB_OIDC = "https://token.actions.githubusercontent.com"
BUILDKIT_METADATA = "https://mobyproject.org/buildkit@v1#metadata"


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def docker(state: dict, args: list[str], stdin: str | None) -> int:
    registry = state["registry"]
    match args:
        case ["buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"]:
            if reference.split("/")[0] not in registry["logged_in"]:
                return fail("ERROR: failed to authorize: 401 Unauthorized")
            if reference not in registry["images"]:
                return fail(f"ERROR: {reference}: not found")
            print(json.dumps({"digest": registry["images"][reference], "size": 856}))
        case ["buildx", "build", *options, "--push", _context]:
            (reference,) = [o.removeprefix("--tag=") for o in options if o.startswith("--tag=")]
            (metadata,) = [o.split("=", 1)[1] for o in options if o.startswith("--metadata-file=")]
            digest = "sha256:" + hashlib.sha256(reference.encode()).hexdigest()
            registry["images"][reference] = digest
            # buildx's provenance names the git remote of the checkout it built.
            vcs = {"source": state["vcs_source"], "revision": reference.rpartition(":")[2]}
            provenance = {"buildType": "https://mobyproject.org/buildkit@v1"}
            provenance["metadata"] = {BUILDKIT_METADATA: {"vcs": vcs}}
            built = {"containerimage.digest": digest, "buildx.build.provenance": provenance}
            Path(metadata).write_text(json.dumps(built))
            if teammate := state.pop("teammate_pushes_during_build", None):
                git = ["git", "-C", teammate, "-c", "user.name=T", "-c", "user.email=t@example.com"]
                subprocess.run([*git, "commit", "-qm", "A teammate's commit", "--allow-empty"])
                subprocess.run([*git, "push", "-q", "origin", "HEAD:develop"], check=True)
        case ["login", "--username", "AWS", "--password-stdin", host]:
            registry["logged_in"].append(host)
        case _:
            return unexpected("docker", args)
    return 0


def doctl(state: dict, args: list[str], stdin: str | None) -> int:
    if not state["do_token"]:
        return fail(
            "Error: Unable to initialize DigitalOcean API client: access token is required."
        )
    match args:
        case ["account", "get", "--format", "Email", "--no-header"]:
            print("release@example.com")
        case ["registry", "login", "--expiry-seconds", _]:
            state["registry"]["logged_in"].append(DOCR)
        case ["kubernetes", "cluster", "kubeconfig", "save", cluster, "--expiry-seconds", _]:
            Path(os.environ["KUBECONFIG"]).write_text(json.dumps({"cluster": cluster}))
        case ["apps", "list", "--format", "ID,Spec.Name", "--no-header"]:
            for name, app in state.get("app_platform", {}).items():
                print(f"{app['id']}   {name}")
        case ["apps", "spec", "get", app_id, "--format", "json"]:
            (app,) = [a for a in state["app_platform"].values() if a["id"] == app_id]
            print(json.dumps(app["spec"]))
        case ["apps", "update", app_id, "--wait", "--spec", "-"]:
            (app,) = [a for a in state["app_platform"].values() if a["id"] == app_id]
            app["spec"] = json.loads(stdin)
        case _:
            return unexpected("doctl", args)
    return 0


def aws(state: dict, args: list[str], stdin: str | None) -> int:
    match args:
        case ["sts", "get-caller-identity", "--query", "Arn", "--output", "text"]:
            print("arn:aws:sts::210987654321:assumed-role/todo-github-deploy/ci")
        case ["ecr", "get-login-password", "--region", "eu-central-1"]:
            print(state["aws"]["password"])
        case ["eks", "update-kubeconfig", "--name", cluster, "--region", "eu-central-1"]:
            Path(os.environ["KUBECONFIG"]).write_text(json.dumps({"cluster": cluster}))
        case _:
            return unexpected("aws", args)
    return 0


def kubectl(state: dict, args: list[str], stdin: str | None) -> int:
    if args[:1] == ["kustomize"]:  # the real renderer the test chose
        return subprocess.run([*state["renderer"], *args[1:]], check=False).returncode
    cluster = json.loads(Path(os.environ["KUBECONFIG"]).read_text())["cluster"]
    applications = state["clusters"][cluster]
    match args:
        case ["--namespace", _, "annotate", "application", name, _, "--overwrite"]:
            if name not in applications:
                return fail(f'Error from server (NotFound): applications "{name}" not found')
        case ["--namespace", _, "get", "application", name, "--output", "json"]:
            print(json.dumps({"status": application(state, applications[name])}))
        case ["--namespace", _, "wait", *what]:
            (condition,) = [w for w in what if w.startswith("--for=")]
            assert [w for w in what if w.startswith("--timeout=")], what
            kind, name = "/".join(w for w in what if not w.startswith("--")).split("/")
            return wait(state, applications, kind, name, condition)
        case _:
            return unexpected("kubectl", args)
    return 0


def wait(state: dict, applications: dict, kind: str, name: str, condition: str) -> int:
    """`kubectl wait`: met at once, or a timeout, as the Application's status (for a jsonpath)
    or the state's `not_ready` list ("kind/name", for a condition) says."""
    if kind == "application":
        path, wanted = condition.removeprefix("--for=jsonpath={.").split("}=")
        value = {"status": application(state, applications[name])}
        for key in path.split("."):
            value = value.get(key, {}) if isinstance(value, dict) else {}
        ready = value == wanted
    else:
        ready = f"{kind}/{name}" not in state.get("not_ready", [])
    if not ready:
        return fail(f"error: timed out waiting for the condition on {kind}s/{name}")
    print(f"{kind}/{name} condition met")
    return 0


def curl(state: dict, args: list[str], stdin: str | None) -> int:
    match args:
        case ["--fail", "--silent", "--show-error", "--max-time", "15", "--output", _, url]:
            status = state["urls"][url]
            if status >= 400:
                return fail(f"curl: (22) The requested URL returned error: {status}", 22)
        case _:
            return unexpected("curl", args)
    return 0


def cosign(state: dict, args: list[str], stdin: str | None) -> int:
    """Keyless signing as state["cosign_identity"]; per image, the signature's and the
    provenance attestation's signer (and predicate)."""
    signed = state["sigstore"]
    match args:
        case ["sign", "--yes", image]:
            signed.setdefault(image, {})["signature"] = [state["cosign_identity"], None]
        case ["attest", "--yes", "--type", "slsaprovenance", "--predicate", path, image]:
            predicate = json.loads(Path(path).read_text())
            signed.setdefault(image, {})["provenance"] = [state["cosign_identity"], predicate]
        case [("verify" | "verify-attestation") as verb, *options, identity, issuer, image]:
            assert options in ([], ["--type", "slsaprovenance"]), options
            assert issuer == f"--certificate-oidc-issuer={GITHUB_OIDC}", issuer
            kind = "signature" if verb == "verify" else "provenance"
            if kind not in signed.get(image, {}):
                return fail(
                    "Error: no signatures found"
                    if verb == "verify"
                    else "Error: no matching attestations: no valid bundles exist in registry",
                    10,
                )
            signer, predicate = signed[image][kind]
            if identity != f"--certificate-identity={signer}":
                return fail(
                    "Error: no matching signatures: none of the expected identities matched what "
                    f"was in the certificate, got subjects [{signer}] with issuer {GITHUB_OIDC}",
                    12,
                )
            print(f"Verification for {image} --", file=sys.stderr)
            statement = {
                "predicateType": "https://slsa.dev/provenance/v0.2",
                "predicate": predicate,
            }
            payload = base64.b64encode(json.dumps(statement).encode()).decode()
            print(json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": payload}))
        case _:
            return unexpected("cosign", args)
    return 0


def application(state: dict, app: dict) -> dict:
    """An Application's status once Argo CD has looked at its branch."""

    def git(*args: str) -> str:
        command = ["git", "--git-dir", app["remote"], *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    revision = git("rev-parse", app["branch"]).strip()
    overlay = yaml.safe_load(git("show", f"{app['branch']}:{app['path']}/kustomization.yaml"))
    (pinned,) = [entry for entry in overlay["images"] if entry["name"] == "todo"]
    image = f"{pinned['newName']}:{pinned['newTag']}@{pinned.get('digest', '')}"
    pulled = state["registry"]["images"].get(f"{pinned['newName']}:{pinned['newTag']}")
    health, why = (
        ("Healthy", "") if pulled == pinned.get("digest") else ("Degraded", "ErrImagePull")
    )
    operation = {"phase": "Succeeded", "syncResult": {"revision": revision}}
    if app["behaviour"] == "stuck":  # never syncs: reports what it ran before
        revision, image, health, why = "0" * 40, "todo:0.1.0", "Progressing", "Waiting for rollout"
        operation = {
            "phase": "Running",
            "message": "waiting for completion of hook batch/Job/migrate",
        }
    return {
        "sync": {"status": "Synced", "revision": revision},
        "health": {"status": health},
        "operationState": operation,
        "summary": {"images": [image]},
        "resources": [
            {"kind": "Deployment", "name": "web", "health": {"status": health, "message": why}}
        ],
    }


HANDLERS = {
    "docker": docker,
    "doctl": doctl,
    "aws": aws,
    "kubectl": kubectl,
    "curl": curl,
    "cosign": cosign,
}
