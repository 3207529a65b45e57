"""components/verify-images, added to each cloud overlay as its README says: Kyverno would
check the identity and repository `invoke deploy --env prod` verifies (ops/image.py), on every
image the overlay pins (test_argocd.py: Argo CD may sync the policy).

Kyverno's CRD is not pinned in versions.yaml (no registry package ships its schema, and the
offline CRD folder lacks it), so these check what the policy says, not Kyverno's schema."""

from __future__ import annotations

import fnmatch

import pytest
import yaml
from invoke import Context

from ops import image, k8s

from .conftest import one, pod_specs
from .test_components import render_as_documented

SOURCE_CONFIG = k8s.KUSTOMIZE_DIR / "argocd" / "base" / "source.yaml"
PROVENANCE_SOURCE = '{{ metadata."https://mobyproject.org/buildkit@v1#metadata".vcs.source }}'


@pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
def test_the_policy_checks_what_deploy_verifies_on_every_image_the_overlay_pins(tmp_path, overlay):
    docs = render_as_documented(tmp_path, overlay, "verify-images")
    policy = one(docs, "Policy", "verify-images")
    assert policy["apiVersion"] == "kyverno.io/v1"
    assert policy["metadata"]["namespace"] == "todo"  # the app's namespace, nothing cluster-wide
    (rule,) = policy["spec"]["rules"]
    assert rule["match"] == {"any": [{"resources": {"kinds": ["Pod"]}}]}
    (check,) = rule["verifyImages"]
    images = {c["image"] for pod in pod_specs(docs).values() for c in pod["containers"]}
    for pinned in images:  # the overlay's image entry, as a release pins it
        assert any(fnmatch.fnmatch(pinned, p) for p in check["imageReferences"]), pinned
    assert check["required"] and check["verifyDigest"] and check["failureAction"] == "Enforce"

    # The identity and repository of `invoke deploy --env prod`, from Argo CD's repoURL.
    source_config = yaml.safe_load(SOURCE_CONFIG.read_text())["data"]
    stage_branch = source_config["stageTargetRevision"]  # what stage's Application follows
    source, identity = image.signer(Context(), source_config["repoURL"], stage_branch)
    signer = {"subject": identity, "issuer": image.GITHUB_OIDC}
    (attestor,) = check["attestors"]
    assert [{k: e["keyless"][k] for k in signer} for e in attestor["entries"]] == [signer]
    (provenance,) = check["attestations"]
    assert provenance["type"] == "https://slsa.dev/provenance/v0.2"  # cosign's slsaprovenance
    (attestor,) = provenance["attestors"]
    assert [{k: e["keyless"][k] for k in signer} for e in attestor["entries"]] == [signer]
    (condition,) = provenance["conditions"][0]["all"]
    assert condition["key"] == PROVENANCE_SOURCE
    assert image.BUILDKIT_METADATA in PROVENANCE_SOURCE
    assert {image.https_url(value) for value in condition["value"]} == {source}


def test_no_overlay_enforces_it_by_default(manifests):
    """Opt-in: until stage runs a signed image, the policy would refuse every pod."""
    for overlay in k8s.OVERLAYS:
        assert not [doc for doc in manifests[overlay] if doc["kind"] == "Policy"], overlay
