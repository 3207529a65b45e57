"""`manage.py seed`: the same arguments give the same rows, spread like a lived-in list."""

import io
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from notifications.models import Notification
from todos.models import Category, Todo

pytestmark = pytest.mark.django_db

NOW = "2026-03-02T10:07:00+00:00"
NOW_TIME = datetime.fromisoformat(NOW)


@pytest.fixture(autouse=True)
def benchmark_settings(settings):
    settings.BENCHMARK = True  # what config.settings.bench sets


def seed(**options):
    options = {"users": 3, "todos": 40, "now": NOW, "replace": True} | options
    call_command("seed", stdout=io.StringIO(), **options)


def snapshot(prefix="user") -> list[tuple]:
    users = get_user_model().objects.filter(username__startswith=prefix).order_by("username")
    rows = []
    for user in users:
        rows.append((user.username, user.display_name, user.time_zone, user.email_reminders))
        rows += [("category", c.name) for c in Category.objects.filter(user=user).order_by("pk")]
        rows += Todo.objects.filter(user=user).order_by("pk").values_list(
            "title", "notes", "priority", "category__name", "status", "due_at", "remind_at",
            "remind_before", "reminded_at", "completed_at",
        )  # fmt: skip
        rows += (
            Notification.objects.filter(user=user)
            .order_by("pk")
            .values_list("title", "scheduled_for", "read_at", "email_status")
        )
    return rows


def test_the_same_arguments_give_the_same_rows():
    seed(seed=7)
    first = snapshot()
    seed(seed=7)
    assert snapshot() == first
    seed(seed=8)
    assert snapshot() != first


def test_a_users_rows_do_not_depend_on_how_many_users_are_seeded():
    seed(users=1)
    alone = snapshot("user1")
    seed(users=3)
    assert snapshot("user1") == alone


def test_creates_n_users_with_m_todos_each_who_can_sign_in(client):
    seed(users=3, todos=40, password="a-known-passw0rd")
    users = get_user_model().objects.filter(username__in=["user1", "user2", "user3"])
    assert users.count() == 3
    for user in users:
        assert Todo.objects.filter(user=user).count() == 40
        assert 2 <= Category.objects.filter(user=user).count() <= 6
    # Through the sign-in form: the lockout backend (django-axes) needs the request.
    signed_in = client.post(
        "/accounts/login/", {"username": "user2", "password": "a-known-passw0rd"}
    )
    assert signed_in.status_code == 302 and client.session["_auth_user_id"]


def test_todos_are_spread_like_a_lived_in_list():
    seed(users=4, todos=100)
    todos = list(Todo.objects.all())
    assert {todo.status for todo in todos} == {"open", "done"}
    assert {todo.priority for todo in todos} == {1, 2, 3}
    assert any(todo.category_id is None for todo in todos)
    assert any(todo.category_id is not None for todo in todos)
    due = [todo.due_at for todo in todos if todo.due_at]
    assert len(due) < len(todos), "some todos have no due date"
    assert min(due) < NOW_TIME < max(due)
    assert all(todo.due_at.minute % 15 == 0 for todo in todos if todo.due_at)
    assert any(todo.status == "open" and todo.due_at < NOW_TIME for todo in todos if todo.due_at)
    for todo in todos:
        if todo.status == "done":
            assert todo.completed_at is not None and todo.completed_at <= NOW_TIME
        if todo.remind_at is not None:
            assert todo.remind_at == todo.due_at - todo.remind_before
            # Reminders whose time passed were sent; the others wait for the scan.
            assert (todo.reminded_at is not None) == (todo.remind_at <= NOW_TIME)
    reminded = [todo for todo in todos if todo.reminded_at]
    assert reminded and any(todo.reminded_at is None and todo.remind_at for todo in todos)
    notifications = Notification.objects.filter(kind="reminder")
    assert notifications.count() == len(reminded)
    assert notifications.filter(read_at__isnull=True).exists()
    assert notifications.filter(read_at__isnull=False).exists()


def test_all_reminders_due_loads_the_reminder_scan():
    seed(users=2, todos=30, all_reminders_due=True, email_opt_in=1.0)
    todos = Todo.objects.all()
    assert todos.count() == 60
    assert not todos.exclude(status="open").exists()
    assert not todos.filter(reminded_at__isnull=False).exists()
    assert not todos.filter(remind_at__gt=NOW_TIME).exists()
    assert not todos.filter(remind_at__lt=NOW_TIME - timedelta(days=2, minutes=15)).exists()
    assert not get_user_model().objects.filter(email_reminders=False).exists()
    assert not Notification.objects.exists()


def test_email_opt_in_share():
    seed(users=20, todos=0, email_opt_in=0.0)
    assert not get_user_model().objects.filter(email_reminders=True).exists()
    seed(users=20, todos=0, email_opt_in=0.5)
    assert 0 < get_user_model().objects.filter(email_reminders=True).count() < 20


def test_refuses_to_run_on_a_production_database(settings):
    settings.BENCHMARK = False
    settings.DEBUG = False
    with pytest.raises(CommandError, match="never in production"):
        seed()
    assert not get_user_model().objects.exists()


def test_replace_recreates_only_this_prefixs_users(make_user):
    bystander = make_user("user1x")  # not PREFIX + digits
    seed(users=2)
    with pytest.raises(CommandError, match="--replace"):
        seed(users=2, replace=False)
    seed(users=1)
    usernames = set(get_user_model().objects.values_list("username", flat=True))
    assert usernames == {"user1", bystander.username}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"users": 0}, "--users"),
        ({"email_opt_in": 1.5}, "--email-opt-in"),
        ({"now": "yesterday"}, "--now"),
    ],
)
def test_rejects_bad_arguments(options, message):
    with pytest.raises(CommandError, match=message):
        seed(**options)
