"""Preview environments: the ApplicationSet (kustomize/argocd/preview) and what it makes of
pull requests, rendered as Argo CD renders them: its template filled in with the pullRequest
generator's parameters (application, below), then the preview overlay with the Application's
kustomize overrides (render, below)."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from ops import k8s, preview

from .checks import KUBERNETES_VERSIONS, schema_problems
from .conftest import find, one, pod_specs

SHAS = {7: "7" * 40, 42: "4a" * 20}
STAGE = "argocd/do/stage"
# Argo CD's default (fasttemplate) placeholders: {{number}}, {{ head_sha }}.
PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def pull_request_params(number: int, head_sha: str, branch: str) -> dict[str, str]:
    """The parameters the pullRequest generator gives the template for one PR."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[:50]
    shas = {"head_sha": head_sha, "head_short_sha": head_sha[:8], "head_short_sha_7": head_sha[:7]}
    return {"number": str(number), "branch": branch, "branch_slug": slug, **shas}


def application(params: dict[str, str]) -> dict:
    """The Application the ApplicationSet makes for these parameters, as Argo CD fills the
    template without goTemplate: JSON-escaped values, unknown placeholders left as they are."""
    template = json.dumps(yaml.safe_load(preview.APPLICATION_SET.read_text())["spec"]["template"])
    escaped = {name: json.dumps(value)[1:-1] for name, value in params.items()}
    filled = PLACEHOLDER.sub(lambda match: escaped.get(match[1], match[0]), template)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **json.loads(filled)}


def render(app: dict) -> list[dict]:
    """The objects Argo CD deploys for an Application of a kustomize path in this repository:
    its kustomize overrides (namespace, images, patches) written into the path's
    kustomization.yaml, as `kustomize edit` would, in a copy of kustomize/."""
    source = app["spec"]["source"]
    overrides = source.get("kustomize", {})
    with tempfile.TemporaryDirectory(prefix="todo-preview-") as tmp:
        root = Path(tmp) / "kustomize"
        shutil.copytree(k8s.KUSTOMIZE_DIR, root)
        path = root / Path(source["path"]).relative_to("kustomize")
        kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
        if "namespace" in overrides:
            kustomization["namespace"] = overrides["namespace"]
        for override in overrides.get("images", []):
            name, _, reference = override.partition("=")
            new_name, _, tag = reference.rpartition(":")
            others = [entry for entry in kustomization.get("images", []) if entry["name"] != name]
            kustomization["images"] = [*others, {"name": name, "newName": new_name, "newTag": tag}]
        kustomization["patches"] = kustomization.get("patches", []) + overrides.get("patches", [])
        (path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
        return k8s.documents(k8s.render(str(path)))  # an absolute path: the copy


@pytest.fixture(scope="module")
def previews() -> dict[int, tuple[dict, list[dict]]]:
    """PR number -> (the Application the set makes, the objects it deploys)."""
    found = {}
    for number, sha in SHAS.items():
        app = application(pull_request_params(number, sha, f"feature/{number}"))
        found[number] = (app, render(app))
    return found


def hosts(docs: list[dict]) -> set[str]:
    ingress = one(docs, "Ingress", "web")["spec"]
    config = one(docs, "ConfigMap", "todo-config")["data"]
    found = {rule["host"] for rule in ingress["rules"]}
    found |= {host for tls in ingress["tls"] for host in tls["hosts"]}
    found |= set(config["DJANGO_ALLOWED_HOSTS"].split(","))
    found |= {urlsplit(config[name]).hostname for name in ("DJANGO_SITE_URL",)}
    found |= {urlsplit(o).hostname for o in config["DJANGO_CSRF_TRUSTED_ORIGINS"].split(",")}
    return found


def test_previews_come_from_labelled_pull_requests_of_this_repository(manifests):
    docs = manifests[STAGE]
    spec = one(docs, "ApplicationSet", "todo-previews")["spec"]
    (generator,) = spec["generators"]
    github = generator["pullRequest"]["github"]
    assert github["labels"] == ["preview"]
    repo_url = one(docs, "Application", "todo-do-stage")["spec"]["source"]["repoURL"]
    assert repo_url.removesuffix(".git").endswith(f"/{github['owner']}/{github['repo']}")
    source = spec["template"]["spec"]["source"]
    assert source["repoURL"] == repo_url
    assert source["path"] == "kustomize/overlays/preview"
    # Deleting the Application (PR closed, label removed) deletes what it deployed.
    assert spec["template"]["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]


@pytest.mark.parametrize("number", SHAS)
def test_a_preview_is_the_pull_requests_commit_in_its_own_namespace_and_host(previews, number):
    """So two pull requests never share a name, a namespace (nor a cluster-wide object: the
    Namespace is named after it) or a host."""
    app, docs = previews[number]
    namespace = f"todo-pr-{number}"
    assert app["metadata"]["name"] == app["spec"]["destination"]["namespace"] == namespace
    assert {doc["metadata"].get("namespace", doc["metadata"]["name"]) for doc in docs} == {
        namespace
    }
    one(docs, "Namespace", namespace)
    assert app["spec"]["source"]["targetRevision"] == SHAS[number]
    for workload, spec in pod_specs(docs).items():
        if workload not in ("StatefulSet/postgres", "StatefulSet/redis"):
            (container,) = spec["containers"]
            assert container["image"].endswith(f"/todo:{SHAS[number]}"), workload
    assert hosts(docs) == {f"pr-{number}.preview.todo.example.com"}
    assert preview.url(number) == f"https://pr-{number}.preview.todo.example.com/"
    assert schema_problems([app, *docs], versions=KUBERNETES_VERSIONS[-1:]) == []


def test_a_preview_has_its_own_data_and_seeded_demo_users(previews):
    _, docs = previews[7]
    assert {doc["metadata"]["name"] for doc in find(docs, "StatefulSet")} == {"postgres", "redis"}
    config = one(docs, "ConfigMap", "todo-config")["data"]
    assert config["DJANGO_DEBUG"] == "false"
    seed = one(docs, "Job", "seed")
    assert seed["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PostSync"
    (container,) = seed["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["python", "manage.py", "seed"]
    assert "--replace" in container["command"]
    # DEBUG (which seed requires) is on for the seed process only.
    assert {"name": "DJANGO_DEBUG", "value": "true"} in container["env"]


def test_the_preview_project_admits_only_preview_namespaces_and_the_rendered_kinds(
    manifests, previews
):
    project = one(manifests[STAGE], "AppProject", "todo-previews")["spec"]
    (destination,) = project["destinations"]
    for app, _ in previews.values():
        assert app["spec"]["project"] == "todo-previews"
        namespace = app["spec"]["destination"]["namespace"]
        assert fnmatch.fnmatchcase(namespace, destination["namespace"])
    assert not fnmatch.fnmatchcase("todo", destination["namespace"])

    def group(doc):
        return doc["apiVersion"].rpartition("/")[0]

    admitted = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
    admitted |= {(k["group"], k["kind"]) for k in project["clusterResourceWhitelist"]}
    rendered = {(group(doc), doc["kind"]) for _, docs in previews.values() for doc in docs}
    assert rendered == admitted


def test_previews_pull_the_image_from_the_stage_registry_and_ci_pushes_it_there(manifests):
    (container,) = pod_specs(manifests["do/stage"])["Deployment/web"]["containers"]
    assert container["image"].rpartition(":")[0] == preview.image_repository()
    (container,) = pod_specs(manifests[k8s.PREVIEW_OVERLAY])["Deployment/web"]["containers"]
    assert container["image"].rpartition(":")[0] == preview.image_repository()
