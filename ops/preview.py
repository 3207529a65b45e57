"""Preview environments, what the ApplicationSet kustomize/argocd/preview makes of a pull
request: .github/workflows/preview.yml runs `invoke preview.push`, then `preview.wait`."""

from __future__ import annotations

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import image
from ops.k8s import KUSTOMIZE_DIR

APPLICATION_SET = KUSTOMIZE_DIR / "argocd" / "preview" / "applicationset.yaml"


def overrides() -> dict:
    """The kustomize block of the ApplicationSet's template (each preview's image and patches),
    its Argo CD placeholders ({{number}}, {{head_sha}}) not filled in."""
    template = yaml.safe_load(APPLICATION_SET.read_text())["spec"]["template"]
    return template["spec"]["source"]["kustomize"]


def url(number: int) -> str:
    [patch] = [p["patch"] for p in overrides()["patches"] if p["target"]["kind"] == "Ingress"]
    ingress = yaml.safe_load(patch.replace("{{number}}", str(number)))
    return f"https://{ingress['spec']['rules'][0]['host']}/"


def image_repository() -> str:
    """Where the ApplicationSet takes each preview's image from (its `todo=` override)."""
    [override] = overrides()["images"]
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
