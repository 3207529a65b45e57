"""The opt-in components, added to each cloud overlay the way their READMEs say: the result
renders and every object validates (test_argocd.py: the AppProject admits every kind a
component adds)."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from ops import k8s

from .checks import schema_problems
from .conftest import one

COMPONENTS = k8s.KUSTOMIZE_DIR / "components"
OPT_IN = {
    "monitoring": ["monitoring"],
    "keda-worker": ["monitoring", "keda-worker"],
    "verify-images": ["verify-images"],  # test_verify_images.py (no pinned CRD to validate)
}


def documented_changes(component: str) -> tuple[list[str], list[dict]]:
    """The components the README's "Use it" adds to an overlay, and the patches it puts in
    scaling.yaml instead of the ones of the same kind and name."""
    readme = (COMPONENTS / component / "README.md").read_text()
    block = re.search(r"## Use it.*?```yaml\n(.*?)```", readme, re.DOTALL)[1]
    kustomization, _, scaling = block.partition("# scaling.yaml")
    scaling = scaling.partition("\n")[2]  # after the heading comment
    # The README's example overlay lists the ones every cloud overlay has, too.
    components = [
        path for path in yaml.safe_load(kustomization)["components"] if path.endswith(tuple(OPT_IN))
    ]
    assert [path.rpartition("/")[2] for path in components] == OPT_IN[component]
    return components, [doc for doc in yaml.safe_load_all(scaling) if doc]


def render_as_documented(tmp_path, overlay: str, component: str) -> list[dict]:
    """A copy of kustomize/ with the README's changes made to `overlay`, rendered."""
    tree = tmp_path / "kustomize"
    shutil.copytree(k8s.KUSTOMIZE_DIR, tree)
    folder = tree / "overlays" / overlay
    components, replacements = documented_changes(component)
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    kustomization["components"] += [c for c in components if c not in kustomization["components"]]
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    if replacements:
        scaling = [doc for doc in yaml.safe_load_all((folder / "scaling.yaml").read_text()) if doc]
        names = {doc["metadata"]["name"] for doc in replacements}
        kept = [
            doc
            for doc in scaling
            if doc["kind"] != "HorizontalPodAutoscaler" or (doc["metadata"]["name"] not in names)
        ]
        (folder / "scaling.yaml").write_text(yaml.safe_dump_all(kept + replacements))
    return k8s.documents(k8s.render(str(folder)))


@pytest.mark.parametrize("component", ["monitoring", "keda-worker"])
@pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
def test_component_renders_and_validates_in_each_cloud_overlay(tmp_path, overlay, component):
    docs = render_as_documented(tmp_path, overlay, component)
    assert schema_problems(docs) == []
    if component == "keda-worker":
        scaled = one(docs, "ScaledObject", "worker")
        assert scaled["spec"]["scaleTargetRef"]["name"] == "worker"
        assert not [
            d
            for d in docs
            if d["kind"] == "HorizontalPodAutoscaler" and (d["metadata"]["name"] == "worker")
        ], "two autoscalers on the worker"
