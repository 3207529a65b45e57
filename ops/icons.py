"""The SVG sprite of the icons templates draw (`{% icon "name" %}`, Lucide's names): `uv run
python -m ops.icons` rebuilds sprite.svg and its licence from the lucide-static npm package that
`invoke setup` installs; a test fails when the committed sprite differs from a fresh build."""

import json
import re
import xml.etree.ElementTree as ET

from ops.tools import APP_DIR, REPO_ROOT

SVG = "http://www.w3.org/2000/svg"
LUCIDE = REPO_ROOT / "node_modules" / "lucide-static"
SPRITE = APP_DIR / "static" / "icons" / "sprite.svg"
SPRITE_LICENSE = SPRITE.with_name("LICENSE.txt")


def build_sprite() -> str:
    """One <symbol id="NAME"> per icon a template names; the page's CSS (.icon) strokes it."""
    pages = [page.read_text() for page in (APP_DIR / "templates").rglob("*.html")]
    names = {name for page in pages for name in re.findall(r'{% icon "([\w-]+)" %}', page)}
    ET.register_namespace("", SVG)
    sprite = ET.Element(f"{{{SVG}}}svg")
    for name in sorted(names):
        source = ET.parse(LUCIDE / "icons" / f"{name}.svg").getroot()  # noqa: S314 (pinned package)
        symbol = {"id": name, "viewBox": source.get("viewBox")}
        ET.SubElement(sprite, f"{{{SVG}}}symbol", symbol).extend(source)
    ET.indent(sprite)
    version = json.loads((LUCIDE / "package.json").read_text())["version"]
    header = f"<!-- Lucide icons (lucide-static {version}), ISC and MIT: see LICENSE.txt -->"
    return f"{header}\n{ET.tostring(sprite, encoding='unicode')}\n"


if __name__ == "__main__":
    SPRITE.write_text(build_sprite())
    SPRITE_LICENSE.write_text((LUCIDE / "LICENSE").read_text())
    print(f"wrote {SPRITE.relative_to(REPO_ROOT)} and {SPRITE_LICENSE.name}")
