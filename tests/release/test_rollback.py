"""`invoke rollback` and `invoke argocd.status` in the release test world (conftest.py).

The overlay's git history is the record: each test writes a few deploys into it the way
`invoke deploy` does (ops.release.set_image, one commit each, the images in the registry).
"""

from __future__ import annotations

import hashlib

from ops.release import ImageRef, image_entry, set_image

from .conftest import DO_REPOSITORY, World
from .test_deploy import changed_lines, ok, refused


def record_deploys(world: World, count: int, env: str = "stage") -> list[ImageRef]:
    """`count` code changes on the env's branch, each deployed: their images, oldest first."""
    branch = "develop" if env == "stage" else "main"
    overlay = world.work / "kustomize" / "overlays" / "do" / env / "kustomization.yaml"
    registry = world.fakes.state["registry"]
    refs = []
    for _ in range(count):
        tag = world.commit_change(branch=branch)
        ref = ImageRef(DO_REPOSITORY, tag, "sha256:" + hashlib.sha256(tag.encode()).hexdigest())
        overlay.write_text(set_image(overlay.read_text(), ref))
        world.git("commit", "--quiet", "-am", f"Deploy {ref.short} to {env} (do)")
        world.git("push", "--quiet", "origin", branch)
        registry["images"][f"{ref.repository}:{ref.tag}"] = ref.digest
        refs.append(ref)
    world.fakes.update(registry=registry)
    return refs


def current(world: World, env: str = "stage") -> ImageRef:
    return image_entry(world.overlay("do", env))


def test_rollback_goes_back_one_image_at_a_time_and_never_forward(world):
    first, second, third = record_deploys(world, 3)
    before = world.snapshot()

    plan = ok(world.invoke("rollback", "--env=stage", "--dry-run"))
    assert world.snapshot() == before
    assert f"from todo {third.tag[:12]} back to todo {second.tag[:12]}" in plan
    assert f"would run: docker buildx imagetools inspect {DO_REPOSITORY}:{second.tag}" in plan

    output = ok(world.invoke("rollback", "--env=stage"))
    assert current(world) == second
    assert changed_lines(world) == [
        f"-    digest: {third.digest}",
        f"-    newTag: {third.tag}",
        f"+    digest: {second.digest}",
        f"+    newTag: {second.tag}",
    ]
    message = world.git("log", "-1", "--format=%B").splitlines()
    assert message[0] == f"Roll back stage (do) to todo {second.tag[:12]}"
    assert f"Rolled-back-from: {third}" in message
    assert world.remote_git("rev-parse", "develop") == world.git("rev-parse", "HEAD")
    assert f"the registry holds {DO_REPOSITORY}:{second.tag} at the recorded digest" in output

    # Again: past the image just abandoned, to the one before; then nothing is left.
    ok(world.invoke("rollback", "--env=stage"))
    assert current(world) == first
    error = refused(world.invoke("rollback", "--env=stage"))
    assert "the overlay's history records no earlier image to roll back to" in error


def test_rollback_to_a_named_tag_but_not_to_an_image_the_registry_lost(world):
    first, second = record_deploys(world, 2)

    ok(world.invoke("rollback", "--env=stage", f"--to={first.tag[:10]}"))
    assert current(world) == first

    registry = world.fakes.state["registry"]
    del registry["images"][f"{DO_REPOSITORY}:{second.tag}"]
    world.fakes.update(registry=registry)
    head = world.git("rev-parse", "HEAD")
    error = refused(world.invoke("rollback", "--env=stage", f"--to={second.tag[:10]}"))
    assert f"error: {DO_REPOSITORY}:{second.tag} is gone, not the recorded" in error
    assert world.git("rev-parse", "HEAD") == head


def test_rolling_back_prod_asks_first(world):
    record_deploys(world, 2, env="prod")
    head = world.git("rev-parse", "HEAD")

    error = refused(world.invoke("rollback", "--env=prod"))

    assert "error: no terminal to confirm on. Fix: run again with --yes" in error
    assert world.git("rev-parse", "HEAD") == head and not world.git("status", "--porcelain")


def test_argocd_status_compares_the_cluster_with_git(world):
    (deployed,) = record_deploys(world, 1)

    output = ok(world.invoke("argocd.status", "--env=stage"))
    tip = world.git("rev-parse", "HEAD")
    assert f"git        origin/develop {tip[:12]} pins {deployed}" in output
    assert f"sync       Synced at {tip[:12]}" in output
    assert f"images     {deployed}" in output
    assert "todo-do-stage is in step with Git." in output
    assert not world.calls("curl")  # status reads; --check also asks the public URL

    clusters = world.fakes.state["clusters"]
    clusters["todo-stage"]["todo-do-stage"]["behaviour"] = "stuck"
    world.fakes.update(clusters=clusters)
    result = world.invoke("argocd.status", "--env=stage")
    assert result.returncode == 1
    assert "health     Progressing; unhealthy: Deployment/web Progressing (Waiting" in result.stdout
    assert "last sync  Running: waiting for completion of hook batch/Job/migrate" in result.stdout
    assert result.stderr.splitlines() == [
        "error: stage (do): 1 problem(s):",
        "  - Argo CD is not in step with Git (above; todo-do-stage)",
    ]
