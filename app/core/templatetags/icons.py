"""`{% icon "name" %}`: an icon of the static sprite (ops/icons.py builds it), decorative:
the text or aria-label next to it names the action."""

from functools import cache

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

register = template.Library()


@cache
def sprite_url() -> str:
    """The sprite's URL, looked up once per process: the manifest names the same file until
    the next deploy, and a list page shows dozens of icons (a lookup each was 7% of it)."""
    return static("icons/sprite.svg")


@register.simple_tag
def icon(name: str) -> str:
    return format_html(
        '<svg class="icon" aria-hidden="true" focusable="false"><use href="{}#{}"></use></svg>',
        sprite_url(),
        name,
    )
