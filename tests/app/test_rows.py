"""The list's rows are rendered once and then read from the cache (todos/rows.py), under a
key of what each shows: a write changes its one row, and a failing cache costs renders."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from todos import rows
from todos.models import Category, Todo

pytestmark = pytest.mark.django_db

LIST = reverse("todos:list")


def counts() -> tuple[float, float]:
    return tuple(
        REGISTRY.get_sample_value(f"todo_row_cache_{name}_total") or 0.0
        for name in ("hits", "misses")
    )


@pytest.fixture
def todos(user):
    home = Category.objects.create(user=user, name="Home")
    return [
        Todo.objects.create(user=user, title=f"todo {n}", category=home if n % 2 else None)
        for n in range(4)
    ]


def keys(todos) -> list[str]:
    fresh = Todo.objects.select_related("category").in_bulk([todo.pk for todo in todos])
    return [rows.row_key(fresh[todo.pk]) for todo in todos]


def test_rows_are_rendered_once_then_read_from_the_cache(user_client, todos):
    hits, misses = counts()
    first = user_client.get(LIST).content.decode()
    assert counts() == (hits, misses + 4)
    second = user_client.get(LIST).content.decode()
    assert counts() == (hits + 4, misses + 4)
    items = re.compile(r'<ul id="todo-items".*?</ul>', re.S)
    assert items.search(first).group(0) == items.search(second).group(0)
    assert all(cache.get(key) for key in keys(todos))


def test_a_write_changes_the_key_of_its_own_row_only(user_client, todos):
    user_client.get(LIST)
    before = keys(todos)
    user_client.post(reverse("todos:toggle", args=[todos[0].pk]), HTTP_HX_REQUEST="true")
    after = keys(todos)
    assert after[0] != before[0]
    assert after[1:] == before[1:]
    page = user_client.get(LIST).content.decode()
    assert re.search(rf'<li id="todo-{todos[0].pk}" class="todo todo-done"', page)


def test_what_changes_without_a_save_changes_the_key(user, todos):
    before = keys(todos)
    Category.objects.filter(user=user).update(name="House")  # shown on the odd rows
    Todo.objects.filter(pk=todos[2].pk).update(
        remind_at=timezone.now(),
        reminded_at=timezone.now(),  # as the reminder scan does
    )
    after = keys(todos)
    assert [a != b for a, b in zip(after, before, strict=True)] == [False, True, True, True]
    due = Todo.objects.get(pk=todos[0].pk)
    due.due_at = timezone.now() + timedelta(hours=1)
    key = rows.row_key(due)
    with timezone.override("Asia/Tokyo"):
        assert rows.row_key(due) != key  # the dates shown are in the user's time zone
    due.due_at = timezone.now() - timedelta(hours=1)
    assert rows.row_key(due) != key  # overdue now


def test_a_row_holds_nothing_of_the_request(user_client, todos):
    page = user_client.get(f"{LIST}?status=open").content.decode()
    row = rows.rows([Todo.objects.select_related("category").get(pk=todos[1].pk)])[0]
    assert "csrfmiddlewaretoken" not in row and "status=open" not in row
    assert row in page
    # The page's one form carries the token and the page to return to, for every row.
    actions = re.search(r'<form id="todo-actions" method="post" hidden>(.*?)</form>', page, re.S)
    assert actions and "csrfmiddlewaretoken" in actions.group(1)
    assert 'name="next" value="/?status=open"' in actions.group(1)
    assert page.count('form="todo-actions"') == 2 * len(todos)  # toggle and delete


@pytest.fixture
def redis_down(settings):
    """The production cache settings, their Redis on a port nothing listens on: an outage."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"},
    }


def test_the_list_answers_while_the_cache_is_down(redis_down, user_client, todos, caplog):
    hits, misses = counts()
    response = user_client.get(LIST)
    assert response.status_code == 200
    assert all(f'id="todo-{todo.pk}"' in response.content.decode() for todo in todos)
    assert counts() == (hits, misses + 4)
    assert "Error 111 connecting to 127.0.0.1:1" in caplog.text
