"""Rendered overlays, built once per test session and shared by every test in tests/k8s."""

from __future__ import annotations

import pytest
from invoke.exceptions import Exit

from ops import k8s

APP_WORKLOADS = ("Deployment/web", "Deployment/worker", "Deployment/beat", "Job/migrate")


class Rendered(dict):
    """Targets that failed to render fail the tests that use them, and only those."""

    def __init__(self, outputs: dict, errors: dict[str, str]):
        super().__init__(outputs)
        self.errors = errors

    def __missing__(self, target: str):
        pytest.fail(self.errors.get(target, f"unknown target {target!r}"), pytrace=False)


@pytest.fixture(scope="session")
def rendered() -> Rendered:
    """YAML of every overlay and Argo CD target, keyed by name ("do/prod", "argocd/do/prod")."""
    outputs, errors = {}, {}
    for target in k8s.OVERLAYS + k8s.ARGOCD_TARGETS:
        try:
            outputs[target] = k8s.render(target)
        except Exit as error:
            errors[target] = str(error)
    return Rendered(outputs, errors)


@pytest.fixture(scope="session")
def manifests(rendered) -> Rendered:
    """Parsed objects of every rendered target."""
    return Rendered(
        {target: k8s.documents(text) for target, text in rendered.items()}, rendered.errors
    )


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    """Objects of a kind (and name, ignoring kustomize's hash suffix on generated names)."""
    return [
        doc
        for doc in docs
        if doc["kind"] == kind
        and (name is None or k8s.generated_base_name_of(doc["metadata"]["name"]) == name)
    ]


def one(docs: list[dict], kind: str, name: str) -> dict:
    matches = find(docs, kind, name)
    assert len(matches) == 1, f"expected exactly one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    """Pod templates of every workload, keyed by Kind/name."""
    return {
        k8s.object_id(doc): doc["spec"]["template"]["spec"]
        for doc in docs
        if doc["kind"] in ("Deployment", "StatefulSet", "Job")
    }
