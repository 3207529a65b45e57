"""The release's one change: the overlay's `todo` image entry, edited in place."""

from __future__ import annotations

import pytest
import yaml
from invoke import Context

from ops import k8s
from ops.release import ImageRef, environment, image_entry, rendered_images, set_image

REF = ImageRef(
    "registry.digitalocean.com/acme/todo",
    "3f2a1c9d8e7f60718293a4b5c6d7e8f901234567",
    "sha256:" + "5e" * 32,
)


@pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
def test_only_the_todo_entry_of_each_cloud_overlay_changes(overlay):
    path = k8s.KUSTOMIZE_DIR / "overlays" / overlay / "kustomization.yaml"
    before = path.read_text()
    after = set_image(before, REF)
    assert image_entry(after) == REF
    removed = set(before.splitlines()) - set(after.splitlines())
    added = set(after.splitlines()) - set(before.splitlines())
    assert all(line.split(":")[0].strip() in ("newName", "newTag") for line in removed)
    assert {line.strip().split(":")[0] for line in added} <= {"newName", "newTag", "digest"}
    assert len(after.splitlines()) == len(before.splitlines()) + 1  # the digest line
    assert set_image(after, REF) == after  # a second edit changes nothing


def test_the_layout_kustomize_edit_writes_is_edited_in_place():
    written_by_kustomize = (
        "resources:\n- ../base\nimages:\n- digest: sha256:" + "00" * 32 + "\n"
        "  name: todo\n  newName: old.example.com/todo\n  newTag: old\n"
        "- name: nginx\n  newTag: '1.27'\n"
    )
    after = set_image(written_by_kustomize, REF)
    assert after == (
        f"resources:\n- ../base\nimages:\n- digest: {REF.digest}\n"
        f"  name: todo\n  newName: {REF.repository}\n  newTag: {REF.tag}\n"
        "- name: nginx\n  newTag: '1.27'\n"
    )


def test_missing_fields_are_added_and_a_numeric_tag_stays_a_string():
    numeric = ImageRef(REF.repository, "1234567890" * 4, REF.digest)
    after = set_image(
        "images:\n  - name: todo  # the app\n    newTag: x  # pinned\nlabels: []\n", numeric
    )
    assert yaml.safe_load(after)["images"] == [
        {"name": "todo", "newName": numeric.repository, "newTag": numeric.tag, "digest": REF.digest}
    ]
    assert after.endswith("labels: []\n") and "# the app" in after
    assert f'newTag: "{numeric.tag}"  # pinned' in after


@pytest.mark.parametrize(
    ("kustomization", "problem"),
    [
        ("images: [{name: todo, newTag: x}]\n", "no block-style `images:` list"),
        ("resources: [../base]\n", "no block-style `images:` list"),
        ("images:\n  - name: nginx\n    newTag: '1'\n", "no entry named todo"),
    ],
)
def test_a_layout_it_cannot_edit_safely_is_refused(kustomization, problem):
    with pytest.raises(ValueError, match=problem):
        set_image(kustomization, REF)


def test_the_edited_overlay_renders_every_workload_with_the_pinned_image():
    stage = environment(Context(), "stage", "do")
    edited = set_image(stage.overlay.read_text(), REF)
    assert rendered_images(stage, edited) == {str(REF)}
