"""The todo list costs the same number of SQL queries for 5 todos as for 50."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.models import Notification
from todos.models import Category, Todo

pytestmark = pytest.mark.django_db

# The list page's statements, 2: the todos' count and page. The session, the user, the
# user's categories and the unread count come from the cache (the first request after
# signing in reads the last three from the database too).
LIST_PAGE_QUERY_BUDGET = 2


def seed(user, count: int):
    categories = [Category.objects.create(user=user, name=f"c{i}") for i in range(3)]
    Todo.objects.bulk_create(
        Todo(user=user, title=f"todo {i}", category=categories[i % 3] if i % 4 else None)
        for i in range(count)
    )
    Notification.objects.create(user=user, kind="welcome", title="unread")


def list_queries(client, **params) -> list[str]:
    client.get(reverse("todos:list"), params)  # the user, categories, badge into the cache
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("todos:list"), params)
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.parametrize("params", [{}, {"status": "open", "sort": "due", "q": "todo"}])
def test_list_queries_do_not_grow_with_todos(client, make_user, params):
    few, many = make_user("few"), make_user("many")
    seed(few, 5)
    seed(many, 50)
    client.force_login(few)
    few_queries = list_queries(client, **params)
    client.force_login(many)
    many_queries = list_queries(client, **params)
    assert len(few_queries) == len(many_queries), "\n".join(many_queries)
    assert len(many_queries) <= LIST_PAGE_QUERY_BUDGET, "\n".join(many_queries)


def test_notifications_page_queries_do_not_grow(client, make_user):
    counts = []
    for n in (3, 30):
        user = make_user(f"n{n}")
        Notification.objects.bulk_create(
            Notification(user=user, kind="welcome", title=f"n{i}") for i in range(n)
        )
        client.force_login(user)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("notifications:list")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_statements_a_connection_repeats_are_prepared(client, make_user):
    """Server-side binding lets psycopg prepare what a connection runs 5 times or more,
    so PostgreSQL plans the list page's statements once per connection."""
    user = make_user("prepared")
    seed(user, 5)
    client.force_login(user)
    for _ in range(6):
        client.get(reverse("todos:list"), {"page": "1"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("todos_todo" in statement for statement in prepared), prepared
