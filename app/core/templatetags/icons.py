"""`{% icon "name" %}`: an icon of the static sprite (ops/icons.py builds it), decorative:
the text or aria-label next to it names the action."""

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def icon(name: str) -> str:
    return format_html(
        '<svg class="icon" aria-hidden="true" focusable="false"><use href="{}#{}"></use></svg>',
        static("icons/sprite.svg"),
        name,
    )
