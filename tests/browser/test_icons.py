"""The icons are a sprite served from static files, built from the pinned lucide-static
package (ops/icons.py): the committed sprite is what a fresh build makes, every icon a
template names is in it, and every icon in it is used."""

from __future__ import annotations

import re

import pytest

from ops import icons
from ops.prerequisites import SETUP_COMMAND
from ops.tools import APP_DIR

TEMPLATES = sorted((APP_DIR / "templates").rglob("*.html"))


def named_in_templates() -> set[str]:
    return {
        name
        for path in TEMPLATES
        for name in re.findall(r'{% icon "([\w-]+)" %}', path.read_text())
    }


def test_the_committed_sprite_is_a_fresh_build_of_the_pinned_package():
    if not icons.LUCIDE.is_dir():
        pytest.fail(f"lucide-static is missing: {SETUP_COMMAND}")
    assert icons.SPRITE.read_text() == icons.build_sprite(), "run `uv run python -m ops.icons`"
    assert icons.SPRITE_LICENSE.read_text() == (icons.LUCIDE / "LICENSE").read_text()


def test_every_icon_a_template_names_is_in_the_sprite_and_none_is_unused():
    in_sprite = set(re.findall(r'<symbol id="([\w-]+)"', icons.SPRITE.read_text()))
    assert named_in_templates() == in_sprite
