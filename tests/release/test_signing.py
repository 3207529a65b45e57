"""A signed, described image: stage signs what it builds, prod promotes only what CD signed.

cosign is a recording fake (fake_cloud.py): it signs as the identity the test gives it and
verifies against what it signed, answering with cosign's own messages; Sigstore itself cannot
be reached here.
"""

from __future__ import annotations

import pytest

from .conftest import CD_IDENTITY, DO_REPOSITORY, SOURCE, World
from .test_deploy import deploy_stage, ok, refused

ISSUER = "--certificate-oidc-issuer=https://token.actions.githubusercontent.com"


def stage_then_main(world: World) -> str:
    """Stage deployed, develop merged into main: the pushed image by digest."""
    head = world.git("rev-parse", "HEAD")
    deploy_stage(world)
    world.merge_develop_into_main()
    return f"{DO_REPOSITORY}@{world.fakes.state['registry']['images'][f'{DO_REPOSITORY}:{head}']}"


def test_stage_signs_the_image_it_built_and_attests_its_provenance_before_the_release(world):
    ok(world.invoke("deploy", "--env=stage", "--skip-tests"))

    calls = world.calls()
    (build,) = [call for call in calls if " build " in call]
    assert "--sbom=true --provenance=mode=max" in build  # SPDX SBOM, SLSA provenance in the index
    cosign = [call for call in calls if call.startswith("cosign")]
    (signed,) = {call.rpartition(" ")[2] for call in cosign}
    assert signed.startswith(f"{DO_REPOSITORY}@sha256:")  # by digest, never by tag
    assert [call.split()[1] for call in cosign] == ["sign", "attest"]
    assert "--type slsaprovenance --predicate " in cosign[1]
    # Signed after the push, the signature before the attestation.
    assert calls.index(build) < calls.index(cosign[0]) < calls.index(cosign[1])
    provenance = world.fakes.state["sigstore"][signed]["provenance"]
    assert provenance[0] == CD_IDENTITY


def test_prod_verifies_the_signer_and_the_provenance_before_it_promotes(world):
    image = stage_then_main(world)

    output = ok(world.invoke("deploy", "--env=prod", "--yes"))

    identity = f"--certificate-identity={CD_IDENTITY}"
    assert world.calls("cosign") == [
        f"cosign verify {identity} {ISSUER} {image}",
        f"cosign verify-attestation --type slsaprovenance {identity} {ISSUER} {image}",
    ]
    assert "is signed by the Deploy workflow, provenance: this repo" in output
    assert world.git("log", "-1", "--format=%s").startswith("Promote todo")


@pytest.mark.parametrize(
    ("stage", "settings", "wrong"),
    [
        (
            {},
            {"INVOKE_IMAGE_SIGN": "0"},
            "is not signed by " + CD_IDENTITY,
        ),  # deployed from a laptop
        (
            {
                "cosign_identity": "https://github.com/mallory/todo/.github/workflows/x.yml@refs/heads/x"
            },
            {},
            f"is signed, but not by {CD_IDENTITY} (cosign: Error: no matching signatures: none "
            "of the expected identities matched what was in the certificate, got subjects "
            "[https://github.com/mallory/todo/",
        ),
        (
            {"vcs_source": "https://github.com/mallory/todo.git"},
            {},
            f"names https://github.com/mallory/todo.git, not {SOURCE}",
        ),
    ],
    ids=["unsigned", "another-identity", "provenance-from-another-repository"],
)
def test_prod_refuses_an_unsigned_or_foreign_image_and_changes_nothing(
    world, stage, settings, wrong
):
    world.fakes.update(**stage)
    cd = world.env
    world.env = cd | settings
    image = stage_then_main(world)
    world.env = cd
    world.fakes.update(cosign_identity=CD_IDENTITY)
    before = world.snapshot()

    error = refused(world.invoke("deploy", "--env=prod", "--yes"))

    (line,) = error.splitlines()
    assert line.startswith("error: prod (do) runs only images CD built here: ")
    assert wrong in line and image in line
    assert "Fix: deploy stage from the Deploy workflow on develop, which signs" in line
    assert world.snapshot() == before


def test_a_prod_dry_run_shows_the_verification_and_a_missing_cosign_is_a_problem(world):
    stage_then_main(world)

    output = ok(world.invoke("deploy", "--env=prod", "--dry-run"))

    assert f"would run: cosign verify --certificate-identity={CD_IDENTITY} {ISSUER} " in output
    assert "would run: cosign verify-attestation --type slsaprovenance" in output
    assert not world.calls("cosign")
    world.fakes.remove("cosign")
    error = refused(world.invoke("deploy", "--env=prod", "--dry-run"))
    assert "`cosign` is not installed. Fix: install cosign (https://docs.sigstore.dev" in error


def test_signing_without_cosign_stops_before_anything_is_built(world):
    world.fakes.remove("cosign")

    result = world.invoke("deploy", "--env=stage", "--skip-tests")

    assert result.returncode == 127
    assert "error: `cosign` is not installed. Fix: install cosign" in result.stderr
    assert not [call for call in world.calls() if " build " in call]
