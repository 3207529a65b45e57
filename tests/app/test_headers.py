"""Browser hardening headers on every URL pattern (the isolation test's walk): a strict
Content-Security-Policy and a Permissions-Policy on every answer, and `Cache-Control:
private, no-store` on everything a signed-in user gets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.cache import get_max_age

from notifications.models import Notification
from tests.app.test_isolation import ALL_URLS, base_values, fill
from todos.models import Category, Todo

pytestmark = pytest.mark.django_db


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def cache_control(response) -> set[str]:
    return {part.strip() for part in response.headers.get("Cache-Control", "").split(",")}


def assert_hardened(response, url: str):
    directives = csp_directives(response)
    for directive in ("script-src", "style-src"):
        assert directive in directives, f"{url}: no {directive} in the CSP"
        assert "'unsafe-inline'" not in directives[directive], f"{url}: {directive}"
        assert "'unsafe-eval'" not in directives[directive], f"{url}: {directive}"
    assert directives["default-src"] == ["'self'"], url
    assert directives["object-src"] == directives["frame-ancestors"] == ["'none'"], url
    assert "camera=()" in response.headers.get("Permissions-Policy", ""), url


@pytest.fixture
def staff_client(client, make_user):
    """A staff member who owns one of everything, so id URLs answer with their pages."""
    owner = make_user("staff", is_staff=True, is_superuser=True)
    category = Category.objects.create(user=owner, name="Mine")
    todo = Todo.objects.create(
        user=owner, title="Mine", category=category, due_at=timezone.now() + timedelta(days=1)
    )
    Notification.objects.create(user=owner, kind="welcome", title="Hi")
    client.force_login(owner)
    client.values = base_values(todo.pk)
    return client


@pytest.mark.parametrize(("route", "name"), ALL_URLS, ids=[name for _, name in ALL_URLS])
def test_signed_in_answers_are_hardened_and_never_cached(staff_client, route, name):
    url = fill(route, staff_client.values)
    response = staff_client.get(url)
    assert response.status_code != 500, url
    assert_hardened(response, url)
    assert {"private", "no-store"} <= cache_control(response), f"{url}: {cache_control(response)}"


@pytest.mark.parametrize(("route", "name"), ALL_URLS, ids=[name for _, name in ALL_URLS])
def test_anonymous_answers_are_hardened(client, route, name):
    url = fill(route, base_values(1))
    assert_hardened(client.get(url), url)


def test_the_csv_export_is_private(user_client):
    response = user_client.get("/todos/export.csv")
    assert response.status_code == 200
    assert {"private", "no-store"} <= cache_control(response)
    assert get_max_age(response) is None  # nothing tells a cache how long it may keep it


def test_public_pages_may_be_cached_by_the_browser(client):
    """Anonymous pages are left to Django's defaults (login sets its own never_cache)."""
    response = client.get("/help/")
    assert response.status_code == 200
    assert "no-store" not in cache_control(response)
