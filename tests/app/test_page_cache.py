"""The list page cache (todos/page_cache.py): a stored page is only ever served while it
is exactly what rendering would give, CSRF token aside.

Every way the page's data can change is applied between two requests, and the second
answer must equal a fresh render and differ from the first (so no case passes by
changing nothing). The writes include ones no save() or signal sees: a queryset update,
a bulk insert and plain SQL.
"""

from __future__ import annotations

import re
import time
import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from notifications.services import claim_reminder_batch
from todos.models import Category, Todo
from todos.page_cache import CSRF_SLOT, ListPageCache

pytestmark = pytest.mark.django_db

LIST = reverse("todos:list")
# A masked CSRF token: 64 letters and digits (django.middleware.csrf).
TOKEN = re.compile(r"\b[A-Za-z0-9]{64}\b")


@pytest.fixture(autouse=True)
def empty_cache():
    caches["pages"].clear()
    yield
    caches["pages"].clear()


@pytest.fixture
def data(user):
    work = Category.objects.create(user=user, name="Work")
    todo = Todo.objects.create(
        user=user, title="Write report", category=work, due_at=timezone.now() + timedelta(days=2)
    )
    done = Todo.objects.create(user=user, title="Old task", status=Todo.Status.DONE)
    reminder = Todo.objects.create(
        user=user, title="Call Sam", remind_at=timezone.now() - timedelta(minutes=1)
    )
    unread = Notification.objects.create(user=user, kind="welcome", title="Welcome")
    return {"work": work, "todo": todo, "done": done, "reminder": reminder, "unread": unread}


def page(client, path=LIST, **headers) -> str:
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    return TOKEN.sub("TOKEN", response.content.decode())


def fresh_page(client, path=LIST, **headers) -> str:
    caches["pages"].clear()
    return page(client, path, **headers)


def consume_messages(client):
    """Show the flash messages a redirect left on another page, as a browser would."""
    assert client.get(reverse("accounts:profile")).status_code == 200


def post(client, name, *args, data=None, **headers):
    response = client.post(reverse(name, args=args), data or {}, headers=headers)
    assert response.status_code in (200, 302), response.content[:500]
    consume_messages(client)


def raw_sql_rename(client, user, data):
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Todo._meta.db_table} SET title = 'Renamed in SQL' WHERE id = %s",  # noqa: S608
            [data["todo"].pk],
        )


WRITES = {
    "quick add (htmx)": lambda c, u, d: post(
        c,
        "todos:create",
        data={"form": "quick", "title": "New one", "priority": 2},
        HX_Request="true",
    ),
    "edit": lambda c, u, d: post(
        c, "todos:edit", d["todo"].pk, data={"title": "Edited", "priority": 3}
    ),
    "complete (htmx)": lambda c, u, d: post(c, "todos:toggle", d["todo"].pk, HX_Request="true"),
    "delete (htmx)": lambda c, u, d: post(c, "todos:delete", d["todo"].pk, HX_Request="true"),
    "clear done": lambda c, u, d: post(c, "todos:clear_done"),
    "add category": lambda c, u, d: post(c, "todos:categories", data={"name": "Home"}),
    "rename category": lambda c, u, d: post(
        c, "todos:category_edit", d["work"].pk, data={"name": "Office"}
    ),
    "delete category": lambda c, u, d: post(c, "todos:category_delete", d["work"].pk),
    "display name": lambda c, u, d: post(
        c, "accounts:profile", data={"display_name": "Al", "email": u.email, "time_zone": ""}
    ),
    "time zone": lambda c, u, d: post(
        c,
        "accounts:profile",
        data={"display_name": "", "email": u.email, "time_zone": "Pacific/Auckland"},
    ),
    "read a notification": lambda c, u, d: post(c, "notifications:read", d["unread"].pk),
    "read all notifications": lambda c, u, d: post(c, "notifications:read_all"),
    "queryset update": lambda c, u, d: Todo.objects.filter(pk=d["todo"].pk).update(priority=3),
    "bulk insert": lambda c, u, d: Todo.objects.bulk_create([Todo(user=u, title="Bulk")]),
    "plain SQL": raw_sql_rename,
    "reminder scan": lambda c, u, d: claim_reminder_batch(timezone.now(), 100),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_write_is_on_the_next_page(user_client, user, data, write):
    before = page(user_client)
    assert page(user_client) == before  # stored, and served as stored
    write(user_client, user, data)
    after = page(user_client)
    assert after != before, "the write changed nothing the page shows: not a test"
    assert after == fresh_page(user_client)


def test_a_stored_page_costs_two_queries_and_no_rendering(user_client, data):
    first = user_client.get(LIST)
    assert first.context is not None  # rendered
    with CaptureQueriesContext(connection) as queries:
        second = user_client.get(LIST)
    assert second.context is None  # no template rendered
    # The session with its user, the fingerprint.
    assert len(queries) == 2, "\n".join(q["sql"] for q in queries.captured_queries)


def test_each_browser_gets_its_own_working_csrf_token(user, data):
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first.force_login(user)
    second.force_login(user)
    first_html = first.get(LIST).content.decode()
    second_html = second.get(LIST).content.decode()  # the page the first one stored
    assert CSRF_SLOT not in first_html and CSRF_SLOT not in second_html
    assert TOKEN.sub("T", first_html) == TOKEN.sub("T", second_html)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', second_html)[1]
    assert token not in first_html
    response = second.post(
        reverse("todos:create"), {"title": "Posted", "priority": 2, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert Todo.objects.filter(title="Posted").exists()


def test_users_never_see_each_others_pages(client, user, other_user, data):
    Todo.objects.create(user=other_user, title="Bob's secret")
    client.force_login(user)
    page(client)
    client.force_login(other_user)
    html = page(client)
    assert "Bob&#x27;s secret" in html and "Write report" not in html


def test_filters_pages_and_htmx_fragments_are_stored_apart(user_client, data):
    full = page(user_client)
    done = page(user_client, f"{LIST}?status=done")
    htmx = {"HX-Request": "true", "HX-Target": "todo-list"}
    fragment = user_client.get(f"{LIST}?status=done", headers=htmx)
    again = user_client.get(f"{LIST}?status=done", headers=htmx)
    assert "Write report" in full and "Write report" not in done and "Old task" in done
    assert again.context is None
    assert TOKEN.sub("T", again.content.decode()) == TOKEN.sub("T", fragment.content.decode())
    assert again["HX-Push-Url"] == fragment["HX-Push-Url"] == f"{LIST}?status=done"
    assert not again.content.decode().lstrip().startswith("<!doctype")


def test_flash_messages_are_shown_once_and_never_stored(user_client, data):
    page(user_client)
    user_client.post(reverse("todos:create"), {"title": "With message", "priority": 2})
    shown = page(user_client)
    assert "Added “With message”." in shown
    again = page(user_client)
    assert "Added “With message”." not in again and "With message" in again


def test_a_todo_turns_overdue_on_a_stored_page_when_its_due_time_passes(user_client, user):
    Todo.objects.create(user=user, title="Soon", due_at=timezone.now() + timedelta(seconds=2))
    assert "badge-overdue" not in page(user_client)
    time.sleep(2.1)
    assert "badge-overdue" in page(user_client)


def test_pages_expire_at_the_users_midnight(rf, user):
    auckland = zoneinfo.ZoneInfo("Pacific/Auckland")
    request = rf.get(LIST)
    request.user = user
    request._messages = []
    with timezone.override(auckland):
        cache = ListPageCache(request, variant="page")
        cache.now = datetime(2026, 11, 26, 23, 0, tzinfo=auckland)
        cache.next_due = None
        assert cache._seconds_until_clock_changes() == 3600
        cache.next_due = cache.now + timedelta(minutes=10)
        assert cache._seconds_until_clock_changes() == 600


def test_off_when_the_setting_is_zero(user_client, data, settings):
    settings.LIST_PAGE_CACHE_SECONDS = 0
    user_client.get(LIST)
    assert user_client.get(LIST).context is not None


def test_a_hard_reload_renders_again(user_client, data):
    user_client.get(LIST)
    reload = user_client.get(LIST, headers={"Cache-Control": "no-cache"})
    assert reload.context is not None
    assert user_client.get(LIST).context is None  # and stored again
