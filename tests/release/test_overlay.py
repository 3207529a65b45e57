"""The release's one change: the overlay's `todo` image entry, edited with ruamel.yaml and
rendered with the real renderer."""

from __future__ import annotations

import pytest
from invoke import Context

from ops import k8s
from ops.release import ImageRef, environment, image_entry, rendered_images, set_image

REF = ImageRef(
    "registry.digitalocean.com/acme/todo",
    "1234567890123456789012345678901234567890",  # digits only: must stay a string
    "sha256:" + "5e" * 32,
)


@pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
def test_only_the_todo_entry_of_each_cloud_overlay_changes(overlay):
    before = (k8s.KUSTOMIZE_DIR / "overlays" / overlay / "kustomization.yaml").read_text()
    after = set_image(before, REF)
    assert image_entry(after) == REF
    removed = [line for line in before.splitlines() if line not in after.splitlines()]
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert [line.split(":")[0].strip() for line in removed] in (["newTag"], ["newName", "newTag"])
    assert {line.split(":")[0].strip() for line in added} <= {"newName", "newTag", "digest"}
    assert len(after.splitlines()) == len(before.splitlines()) + 1  # the digest line
    assert set_image(after, REF) == after  # a second edit changes nothing


def test_the_layout_kustomize_edit_writes_is_edited_in_place_comments_and_all():
    written_by_kustomize = (
        "resources:\n- ../base\nimages:\n- digest: sha256:" + "00" * 32 + "\n"
        "  name: todo  # the app\n  newName: old.example.com/todo\n  newTag: old\n"
        "- name: nginx\n  newTag: '1.27'\n"
    )
    assert set_image(written_by_kustomize, REF) == (
        f"resources:\n- ../base\nimages:\n- digest: {REF.digest}\n"
        f"  name: todo  # the app\n  newName: {REF.repository}\n  newTag: '{REF.tag}'\n"
        "- name: nginx\n  newTag: '1.27'\n"
    )


@pytest.mark.parametrize(
    ("kustomization", "problem"),
    [
        ("images:\n  - name: nginx\n    newTag: '1'\n", "no `images:` entry named todo"),
        ("resources: [../base]\n", "no `images:` entry named todo"),
        ("images:\n  - name: todo\n    newTag: x\nresources:\n- ../base\n", "change its layout"),
    ],
)
def test_a_file_it_cannot_edit_alone_is_refused(kustomization, problem):
    with pytest.raises(ValueError, match=problem):
        set_image(kustomization, REF)


def test_the_edited_overlay_renders_every_workload_with_the_pinned_image():
    stage = environment(Context(), "stage", "do")
    edited = set_image(stage.overlay.read_text(), REF)
    assert rendered_images(stage, edited) == {str(REF)}
    assert stage.overlay.read_text() != edited  # rendered from a scratch copy
