"""Preview environments, what the ApplicationSet kustomize/argocd/preview makes of a pull
request: .github/workflows/preview.yml runs `invoke preview.push`, then `preview.wait`."""

from __future__ import annotations

import json
import re

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import image
from ops.k8s import KUSTOMIZE_DIR

APPLICATION_SET = KUSTOMIZE_DIR / "argocd" / "preview" / "applicationset.yaml"
# Argo CD's default (fasttemplate) placeholders: {{number}}, {{ head_sha }}.
PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def pull_request_params(number: int, head_sha: str, branch: str = "feature") -> dict[str, str]:
    """The parameters the pullRequest generator gives the template for one PR."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[:50]
    shas = {"head_sha": head_sha, "head_short_sha": head_sha[:8], "head_short_sha_7": head_sha[:7]}
    return {"number": str(number), "branch": branch, "branch_slug": slug, **shas}


def application(params: dict[str, str]) -> dict:
    """The Application the ApplicationSet makes for these parameters, as Argo CD fills the
    template without goTemplate: JSON-escaped values, unknown placeholders left as they are."""
    template = json.dumps(yaml.safe_load(APPLICATION_SET.read_text())["spec"]["template"])
    escaped = {name: json.dumps(value)[1:-1] for name, value in params.items()}
    filled = PLACEHOLDER.sub(lambda match: escaped.get(match[1], match[0]), template)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **json.loads(filled)}


def kustomize_overrides(number: int) -> dict:
    """The kustomize block of PR `number`'s Application: its images and patches."""
    return application(pull_request_params(number, "0" * 40))["spec"]["source"]["kustomize"]


def url(number: int) -> str:
    patches = kustomize_overrides(number)["patches"]
    [ingress] = [yaml.safe_load(p["patch"]) for p in patches if p["target"]["kind"] == "Ingress"]
    return f"https://{ingress['spec']['rules'][0]['host']}/"


def image_repository() -> str:
    """Where the ApplicationSet takes each preview's image from (its `todo=` override)."""
    [override] = kustomize_overrides(0)["images"]
    return override.partition("=")[2].rpartition(":")[0]


@task(help={"platforms": "comma-separated platforms (default linux/amd64, the nodes')"})
def push(c, platforms="linux/amd64"):
    """Push this commit's image (tag: its SHA) where the previews pull from; log in first."""
    image.push(c, repository=image_repository(), platforms=platforms)


@task(name="url", help={"number": "the pull request's number"})
def print_url(c, number):
    """Print the preview URL of pull request NUMBER (from the ApplicationSet's template)."""
    print(url(int(number)))


@task(help={"number": "the pull request's number", "timeout": "seconds to wait (default 900)"})
def wait(c, number, timeout=900):
    """Wait until pull request NUMBER's preview answers /readyz with 200, then print its URL."""
    address = url(int(number))
    # curl asks every 10 s until it gets a 2xx or the time is up; only the URL goes to stdout.
    curl = f"curl --fail --silent --show-error --max-time 10 --retry {int(timeout) // 10}"
    curl += f" --retry-delay 10 --retry-all-errors --retry-max-time {timeout}"
    if c.run(f"{curl} --output /dev/null {address}readyz", warn=True, in_stream=False).failed:
        raise Exit(f"error: {address} not ready after {timeout} s (curl said why, above)", code=1)
    print(address)


ns = Collection("preview", push, print_url, wait)
