"""The list's rows, each rendered once and then read from the cache until it changes.

A row (`todos/_item.html`) shows one todo and nothing of the request: its forms submit
the page's one `todo-actions` form, which carries the CSRF token and the page to come
back to. So a row is the same for every request, and is cached under a key made of
everything it shows: the todo's id and `updated_at` (every save moves it), what can
change without a save (the sent reminder, which the reminder scan sets with an UPDATE,
and the category's name), what the clock decides (overdue, due today, in the user's
time zone), and the template and icon sprite it was rendered with. A write makes a new
key for its one row; old keys expire. The page reads all its rows in one `get_many`:
with Redis one round trip, wherever the last render happened. A Redis that is down
reads as empty (django-redis' IGNORE_EXCEPTIONS): the rows are rendered, the page
answers. The metrics endpoint counts rows found and rendered (`todo_row_cache_hits_total`,
`todo_row_cache_misses_total`).
"""

from __future__ import annotations

import hashlib
from functools import cache

from django.core.cache import cache as row_cache
from django.template.loader import get_template, render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from prometheus_client import Counter

from core.templatetags.icons import sprite_url
from todos.models import Todo

TEMPLATE = "todos/_item.html"
TIMEOUT = 24 * 60 * 60  # a row not asked for in a day goes; Redis evicts only keys with one
HITS = Counter("todo_row_cache_hits", "List rows read from the cache")
MISSES = Counter("todo_row_cache_misses", "List rows rendered: not in the cache, or it failed")


@cache
def _rendering() -> str:
    """What else a row's HTML depends on: the template's source and the sprite's URL."""
    source = get_template(TEMPLATE).template.source
    return hashlib.sha256(f"{source}\0{sprite_url()}".encode()).hexdigest()[:16]


def row_key(todo: Todo) -> str:
    now = timezone.localtime()
    shown = (
        todo.updated_at.isoformat(),
        todo.reminded_at is None,
        todo.category.name if todo.category_id else "",
        todo.shows_overdue,
        # Due today and the dates shown depend on the user's day and time zone.
        now.date().isoformat() if todo.due_at else "",
        str(now.tzinfo) if todo.due_at or todo.remind_at else "",
        _rendering(),
    )
    digest = hashlib.sha256("\0".join(map(str, shown)).encode()).hexdigest()[:24]
    return f"todo-row:{todo.pk}:{digest}"


def rows(todos: list[Todo]) -> list[str]:
    """Each todo's row, in order: from the cache where it is there, else rendered and stored."""
    keys = [row_key(todo) for todo in todos]
    found = row_cache.get_many(keys)  # empty while Redis is down (settings: CACHES)
    rendered = {
        key: render_to_string(TEMPLATE, {"todo": todo})
        for key, todo in zip(keys, todos, strict=True)
        if key not in found
    }
    HITS.inc(len(keys) - len(rendered))
    MISSES.inc(len(rendered))
    if rendered:
        row_cache.set_many(rendered, TIMEOUT)
    return [mark_safe(found.get(key) or rendered[key]) for key in keys]  # noqa: S308 (our HTML)
