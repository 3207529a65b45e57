"""Walk every URL pattern of the project: a new URL is covered the day it is added.

- Anonymous visitors get a redirect to log in (or 404/405), except on the public pages.
- A signed-in user who owns nothing asks for another user's objects by id: 404/403/405
  or a redirect to log in, never 200 or 500, and nothing of the owner's changes.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from notifications.models import Notification
from todos.models import Category, Todo

pytestmark = pytest.mark.django_db

# Pages anyone may open (by URL name).
PUBLIC = {
    "login",
    "logout",
    "accounts:signup",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "admin:login",
    "admin:logout",
    "help",
}
ALLOWED_FOREIGN_STATUS = {403, 404, 405}


def iter_urls(resolver=None, prefix="", namespace=""):
    """Yield (route, name) for every URL pattern, with nested includes flattened."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from iter_urls(pattern, route, inner)
        elif isinstance(pattern, URLPattern):
            yield route, f"{namespace}{pattern.name}" if pattern.name else route


def fill(route: str, values: dict[str, str]) -> str:
    """Turn a route (path() or re_path() syntax) into a concrete URL."""

    def value(name: str) -> str:
        if name not in values:
            pytest.fail(f"test_isolation does not know a value for <{name}> in {route!r}")
        return values[name]

    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), route)
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m.group(1)), url)
    return "/" + url.replace("^", "").replace("$", "").replace("\\", "")


ALL_URLS = sorted(set(iter_urls()))


@pytest.fixture
def owner_objects(make_user):
    owner = make_user("owner")
    category = Category.objects.create(user=owner, name="Private")
    todo = Todo.objects.create(
        user=owner, title="Private", category=category, due_at=timezone.now() + timedelta(days=1)
    )
    notification = Notification.objects.create(user=owner, kind="welcome", title="Hi")
    return {"todo": todo, "category": category, "notification": notification}


def snapshot():
    return (
        list(Todo.objects.values_list("pk", "title", "status", "category_id", "updated_at")),
        list(Category.objects.values_list("pk", "name")),
        list(Notification.objects.values_list("pk", "read_at")),
    )


def base_values(object_id: int) -> dict[str, str]:
    return {
        "pk": str(object_id),
        "object_id": str(object_id),
        "id": str(object_id),
        "app_label": "todos",
        "content_type_id": str(ContentType.objects.get_for_model(Todo).pk),
        "uidb64": "MQ",
        "token": "set-password",
        "url": "unknown/",
    }


def test_the_walk_finds_the_project_urls():
    names = {name for _, name in ALL_URLS}
    assert {"todos:edit", "todos:toggle", "todos:category_delete", "notifications:read"} <= names


@pytest.mark.parametrize(("route", "name"), ALL_URLS, ids=[name for _, name in ALL_URLS])
def test_anonymous_visitors_are_sent_to_log_in(client, owner_objects, route, name):
    url = fill(route, base_values(owner_objects["todo"].pk))
    before = snapshot()
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        assert response.status_code != 500, f"{method.upper()} {url}"
        if name in PUBLIC:
            continue
        if response.status_code == 302:
            assert "login/" in response.url, f"{method.upper()} {url} -> {response.url}"
        else:
            assert response.status_code in ALLOWED_FOREIGN_STATUS, f"{method.upper()} {url}"
    assert snapshot() == before


ID_URLS = [
    (route, name) for route, name in ALL_URLS if re.search(r"<(?:\w+:)?(pk|object_id|id)>", route)
]


@pytest.mark.parametrize("kind", ["todo", "category", "notification"])
@pytest.mark.parametrize(("route", "name"), ID_URLS, ids=[name for _, name in ID_URLS])
def test_other_users_objects_are_not_found(client, make_user, owner_objects, route, name, kind):
    intruder = make_user("intruder")  # owns nothing, so no id can be its own
    client.force_login(intruder)
    url = fill(route, base_values(owner_objects[kind].pk))
    before = snapshot()
    for method in ("get", "post"):
        response = (
            getattr(client, method)(url, HTTP_HX_REQUEST="true")
            if method == "post"
            else client.get(url)
        )
        if response.status_code == 302:
            assert "login/" in response.url, f"{method.upper()} {url} -> {response.url}"
        else:
            assert response.status_code in ALLOWED_FOREIGN_STATUS, (
                f"{method.upper()} {url} answered {response.status_code}"
            )
    assert snapshot() == before


def test_malformed_ids_are_404_not_500(user_client):
    for url in [
        "/todos/abc/edit/",
        "/todos/-1/toggle/",
        "/todos/99999999999999999999/edit/",
        "/categories/1.5/edit/",
        "/notifications/%00/read/",
    ]:
        assert user_client.get(url).status_code == 404, url
    assert user_client.get("/todos/9223372036854775807/edit/").status_code == 404
