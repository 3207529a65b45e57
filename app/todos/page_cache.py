"""Rendered list pages, reused while nothing they show has changed.

Rendering is most of the list page's cost (docs/performance.md): 25 rows, the quick-add
form, the filters. What a page shows comes from the user's own row, their todos,
categories and unread notifications, the URL, and the clock. One query reads a
fingerprint of those rows: for each row its physical position and the transaction that
last wrote it (PostgreSQL's `ctid` and `xmin`), which change on every write whatever
made it (a view, the admin, a task's bulk update, plain SQL). So there is nothing to
invalidate and no write path to forget: a page is stored under its fingerprint and URL,
and another write means another key.

The clock changes a page at known instants only: when an open todo's due time passes
(it shows "Overdue" and joins the overdue filter) and at midnight in the user's time
zone (the "today" and "next 7 days" filters). An entry expires at the first of these.

Never stored: the CSRF token (one per browser; pages are rendered with a slot each
response fills in) and flash messages (a page with messages to show is rendered afresh).
A hard reload in the browser (`Cache-Control: no-cache`) renders the page again.

Entries live in each process's memory (the `pages` cache alias): no network hop, and no
new way to fail while Redis is down. The fingerprint needs PostgreSQL; on other databases
(the embedded SQLite of `invoke dev`) every page is rendered.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.core.cache import caches
from django.db import connection
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone, translation

from accounts.models import User
from notifications.models import Notification
from todos.filters import start_of_day
from todos.models import Category, Todo

# Stands in for the CSRF token in stored pages. Random per process and never sent to a
# browser, so no text a user types can contain it.
CSRF_SLOT = f"csrf-slot-{secrets.token_hex(16)}"

_ROWS_STATE = "md5(coalesce(string_agg(ctid::text || xmin::text, ',' ORDER BY ctid), ''))"
# Table names come from the models; every value is a query parameter.
FINGERPRINT_SQL = f"""
SELECT
  (SELECT ctid::text || xmin::text FROM {User._meta.db_table} WHERE id = %(user)s),
  (SELECT {_ROWS_STATE} FROM {Todo._meta.db_table} WHERE user_id = %(user)s),
  (SELECT {_ROWS_STATE} FROM {Category._meta.db_table} WHERE user_id = %(user)s),
  (SELECT count(*) FROM {Notification._meta.db_table}
    WHERE user_id = %(user)s AND read_at IS NULL),
  (SELECT min(due_at) FROM {Todo._meta.db_table}
    WHERE user_id = %(user)s AND status = %(open)s AND due_at > %(now)s)
"""  # noqa: S608


class ListPageCache:
    """One list request's view of the cache: a stored page, or how to store this one."""

    def __init__(self, request, variant: str):
        self.request = request
        self.key: str | None = None
        self.unread_count: int | None = None
        self.next_due: datetime | None = None
        self.now = timezone.now()
        if self._enabled():
            self._read_fingerprint(variant)

    def _enabled(self) -> bool:
        return (
            settings.LIST_PAGE_CACHE_SECONDS > 0
            and connection.vendor == "postgresql"
            and not len(messages.get_messages(self.request))
        )

    def _read_fingerprint(self, variant: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                FINGERPRINT_SQL,
                {"user": self.request.user.pk, "open": Todo.Status.OPEN, "now": self.now},
            )
            user_row, todo_rows, category_rows, self.unread_count, self.next_due = cursor.fetchone()
        parts = (
            variant,
            self.request.get_full_path(),
            timezone.get_current_timezone_name(),
            translation.get_language(),
            user_row,
            todo_rows,
            category_rows,
            self.unread_count,
        )
        digest = hashlib.blake2b("\n".join(map(str, parts)).encode(), digest_size=20).hexdigest()
        self.key = f"todo-list:{self.request.user.pk}:{digest}"

    def cached_response(self) -> HttpResponse | None:
        """The stored page with this browser's CSRF token, or None to render it.

        A hard reload (`Cache-Control: no-cache`) renders the page and stores it again.
        """
        if self.key is None or "no-cache" in self.request.headers.get("Cache-Control", ""):
            return None
        entry = caches["pages"].get(self.key)
        if entry is None:
            return None
        content, headers = entry
        return self._with_token(HttpResponse(content, headers=headers))

    def render_context(self) -> dict:
        """Template context that keeps per-browser values out of the rendered page."""
        if self.key is None:
            return {}
        return {"csrf_token": CSRF_SLOT, "unread_count": self.unread_count}

    def store(self, response: HttpResponse, *, keep_headers: tuple[str, ...] = ()) -> HttpResponse:
        """Keep the page rendered with render_context(), then fill in the CSRF token."""
        if self.key is None:
            return response
        seconds = min(settings.LIST_PAGE_CACHE_SECONDS, self._seconds_until_clock_changes())
        if seconds >= 1:
            headers = {name: response[name] for name in ("Content-Type", *keep_headers)}
            caches["pages"].set(self.key, (response.content, headers), seconds)
        return self._with_token(response)

    def _seconds_until_clock_changes(self) -> float:
        midnight = start_of_day(timezone.localdate(self.now) + timedelta(days=1))
        changes_at = min(midnight, self.next_due) if self.next_due else midnight
        return (changes_at - self.now).total_seconds()

    def _with_token(self, response: HttpResponse) -> HttpResponse:
        token = get_token(self.request).encode()
        response.content = response.content.replace(CSRF_SLOT.encode(), token)
        return response
