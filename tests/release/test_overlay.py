"""The release's one change: the overlay's `todo` image entry, edited with ruamel.yaml."""

from __future__ import annotations

import pytest
from invoke.exceptions import Exit

from ops import k8s
from ops.release import ImageRef, image_entry, set_image

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


def test_a_kustomize_edit_layout_is_edited_in_place_and_an_overlay_without_todo_refused():
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
    with pytest.raises(Exit, match="no `images:` entry named todo"):
        set_image("images:\n  - name: nginx\n    newTag: '1'\n", REF)
