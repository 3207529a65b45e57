"""The SVG sprite of the icons the templates draw, built from the lucide-static npm package.

`uv run python -m ops.icons` rewrites app/static/icons/sprite.svg and its licence from
node_modules (`invoke setup` installs it, at the version package-lock.json pins). Templates
draw an icon with `{% icon "name" %}` (core/templatetags/icons.py); a test fails when the
committed sprite differs from a fresh build, or a template names an icon it lacks.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ops.tools import APP_DIR, REPO_ROOT

SVG = "http://www.w3.org/2000/svg"
LUCIDE = REPO_ROOT / "node_modules" / "lucide-static"
SPRITE = APP_DIR / "static" / "icons" / "sprite.svg"
SPRITE_LICENSE = APP_DIR / "static" / "icons" / "LICENSE.txt"
# Every icon a template uses, by its Lucide name (https://lucide.dev/icons).
ICONS = (
    "alarm-clock",
    "arrow-down",
    "bell",
    "calendar",
    "check",
    "check-check",
    "download",
    "flag",
    "keyboard",
    "list-todo",
    "log-out",
    "pencil",
    "plus",
    "search",
    "tag",
    "trash-2",
    "triangle-alert",
    "user",
)


def build_sprite() -> str:
    """One <symbol id="NAME"> per icon; stroke and fill come from the page's CSS (.icon)."""
    ET.register_namespace("", SVG)
    version = _lucide_version()
    sprite = ET.Element(f"{{{SVG}}}svg")
    for name in ICONS:
        source = ET.parse(LUCIDE / "icons" / f"{name}.svg").getroot()  # noqa: S314 (pinned package)
        symbol = ET.SubElement(
            sprite, f"{{{SVG}}}symbol", id=name, viewBox=source.get("viewBox", "0 0 24 24")
        )
        symbol.extend(list(source))
    ET.indent(sprite)
    body = ET.tostring(sprite, encoding="unicode")
    header = f"<!-- Lucide icons (lucide-static {version}), ISC and MIT: see LICENSE.txt -->"
    return f"{header}\n{body}\n"


def _lucide_version() -> str:
    import json

    return json.loads((LUCIDE / "package.json").read_text())["version"]


def main() -> None:
    SPRITE.parent.mkdir(parents=True, exist_ok=True)
    SPRITE.write_text(build_sprite())
    SPRITE_LICENSE.write_text((LUCIDE / "LICENSE").read_text())
    print(f"wrote {SPRITE.relative_to(REPO_ROOT)} ({len(ICONS)} icons)")


if __name__ == "__main__":
    main()
