"""Preview environments: what the ApplicationSet kustomize/argocd/preview makes of a PR.

`invoke preview.push` pushes this commit's image where previews pull it from;
`invoke preview.url --number N` prints a PR's preview URL; `invoke preview.wait` polls it
until the preview answers ready (.github/workflows/preview.yml runs all three).
tests/k8s renders previews through `application` and `render` exactly as Argo CD would.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import image
from ops.k8s import KUSTOMIZE_DIR, RenderError, documents, renderer

APPLICATION_SET = KUSTOMIZE_DIR / "argocd" / "preview" / "applicationset.yaml"
# Argo CD's default (fasttemplate) placeholders: {{number}}, {{ head_sha }}.
PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def pull_request_params(number: int, head_sha: str, branch: str = "feature") -> dict[str, str]:
    """The parameters the pullRequest generator gives the template for one PR."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[:50]
    return {
        "number": str(number),
        "branch": branch,
        "branch_slug": slug,
        "head_sha": head_sha,
        "head_short_sha": head_sha[:8],
        "head_short_sha_7": head_sha[:7],
    }


def application(params: dict[str, str], application_set: Path = APPLICATION_SET) -> dict:
    """The Application the ApplicationSet makes for these parameters.

    As Argo CD does without goTemplate: the template as JSON, each placeholder replaced by
    its JSON-escaped value, unknown ones left as they are.
    """
    spec = yaml.safe_load(application_set.read_text())["spec"]
    text = json.dumps(spec["template"])

    def value(match: re.Match) -> str:
        found = params.get(match[1])
        return match[0] if found is None else json.dumps(found)[1:-1]

    template = json.loads(PLACEHOLDER.sub(value, text))
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **template}


def render(app: dict) -> list[dict]:
    """The objects Argo CD deploys for an Application of a kustomize path in this repository:
    its kustomize overrides (namespace, images, patches) written into the path's
    kustomization.yaml, as `kustomize edit` would, in a copy of kustomize/."""
    source = app["spec"]["source"]
    overrides = source.get("kustomize", {})
    with tempfile.TemporaryDirectory(prefix="todo-preview-") as tmp:
        root = Path(tmp) / "kustomize"
        shutil.copytree(KUSTOMIZE_DIR, root)
        path = root / Path(source["path"]).relative_to("kustomize")
        kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
        if "namespace" in overrides:
            kustomization["namespace"] = overrides["namespace"]
        for image in overrides.get("images", []):
            name, _, reference = image.partition("=")
            new_name, _, tag = reference.rpartition(":")
            kustomization["images"] = [
                entry for entry in kustomization.get("images", []) if entry["name"] != name
            ] + [{"name": name, "newName": new_name, "newTag": tag}]
        kustomization["patches"] = kustomization.get("patches", []) + overrides.get("patches", [])
        (path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
        result = subprocess.run([*renderer(), str(path)], capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        raise RenderError(f"kustomize failed for {app['metadata']['name']}:\n{result.stderr}")
    return documents(result.stdout)


def url(number: int) -> str:
    """https://<the Ingress host the PR's preview gets>/"""
    overrides = application(pull_request_params(number, "0" * 40))["spec"]["source"]["kustomize"]
    (ingress,) = [
        yaml.safe_load(patch["patch"])
        for patch in overrides["patches"]
        if patch["target"]["kind"] == "Ingress"
    ]
    return f"https://{ingress['spec']['rules'][0]['host']}/"


def image_repository() -> str:
    """Where the ApplicationSet takes each preview's image from (its `todo=` override)."""
    app = application(pull_request_params(0, "0" * 40))
    (override,) = app["spec"]["source"]["kustomize"]["images"]
    return override.partition("=")[2].rpartition(":")[0]


@task(help={"platforms": "comma-separated platforms (default linux/amd64, the nodes')"})
def push(c, platforms="linux/amd64"):
    """Push this commit's image (tag: its SHA) where the previews pull from; log in first."""
    image.push(c, repository=image_repository(), platforms=platforms)


@task(name="url", help={"number": "the pull request's number"})
def print_url(c, number):
    """Print the preview URL of pull request NUMBER (from the ApplicationSet's template)."""
    print(url(int(number)))


@task(
    help={
        "number": "the pull request's number",
        "timeout": "seconds to wait (default 900: the image push, Argo CD's poll, the sync)",
    }
)
def wait(c, number, timeout=900):
    """Wait until pull request NUMBER's preview answers /readyz with 200, then print its URL."""
    address = url(int(number))
    deadline, said = time.monotonic() + int(timeout), "no answer yet"
    while time.monotonic() < deadline:
        try:
            with urlopen(address + "readyz", timeout=10) as response:  # noqa: S310 - https
                if response.status == 200:
                    print(address)
                    return
        except (URLError, OSError) as error:
            said = str(error)
        time.sleep(10)
    raise Exit(f"error: {address} not ready after {timeout} s ({said})", code=1)


ns = Collection("preview", push, print_url, wait)
