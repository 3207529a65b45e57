"""Helpers for the observability tests: reading the Prometheus text format, rendering
the optional Kustomize components on top of an overlay."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from urllib.request import urlopen

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ops import k8s

# The rendered overlays, as tests/k8s renders them (the real processes come from the
# tests/processes.py plugin).
from tests.k8s.conftest import manifests, rendered  # noqa: F401

COMPONENTS_DIR = k8s.KUSTOMIZE_DIR / "components"
COMMON_LABELS = {"app.kubernetes.io/name": "todo", "app.kubernetes.io/part-of": "todo"}
OPTIONAL_COMPONENTS = ("monitoring", "keda-worker")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text page: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int) -> Samples:
    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the one sample with this name whose labels include `labels`."""
    found = [
        sample_value
        for (sample_name, sample_labels), sample_value in samples.items()
        if sample_name == name and set(labels.items()) <= set(sample_labels)
    ]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def render_with_components(overlay: str, components: tuple[str, ...]) -> str:
    """An overlay with optional components added, as a user's overlay would add them.

    Built from a kustomization outside the repo that takes the overlay as its resource
    (kustomize wants relative paths), with the overlays' namespace and common labels.
    """
    with tempfile.TemporaryDirectory(prefix="k8s-components-") as tmp:

        def relative(path: Path) -> str:
            return os.path.relpath(path, tmp)

        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": "todo",
            "labels": [
                {
                    "pairs": COMMON_LABELS,
                    "includeSelectors": False,
                    "includeTemplates": True,
                }
            ],
            "resources": [relative(k8s.KUSTOMIZE_DIR / "overlays" / overlay)],
            "components": [relative(COMPONENTS_DIR / name) for name in components],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        result = subprocess.run([*k8s.renderer(), tmp], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"kustomize failed for {overlay} + {components}:\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="session")
def with_components() -> dict[str, str]:
    """Every cloud overlay rendered with all the optional components."""
    return {
        overlay: render_with_components(overlay, OPTIONAL_COMPONENTS)
        for overlay in k8s.CLOUD_OVERLAYS
    }
