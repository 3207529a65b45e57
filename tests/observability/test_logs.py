"""Request-scoped log context: the request id (taken or made, returned), the user id once
known, the task id and the request id inside Celery tasks."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.conf import settings

from core.logging import JsonFormatter
from observability import logs
from observability.middleware import RequestContextMiddleware
from todos.models import Todo

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines():
    """JSON lines as the production stdout handler writes them (LOGGING in base.py)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(logs.LogContextFilter())
    # The root logger, and "django", which LOGGING keeps from propagating.
    loggers = [logging.getLogger(), logging.getLogger("django")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_the_stdout_handler_adds_the_context_to_every_record():
    assert settings.LOGGING["handlers"]["stdout"]["filters"] == ["log_context"]
    assert settings.LOGGING["filters"]["log_context"]["()"] == "observability.logs.LogContextFilter"
    middleware = "observability.middleware.RequestContextMiddleware"
    # After the probes (not counted, no id needed), before anything that logs.
    assert settings.MIDDLEWARE.index(middleware) < settings.MIDDLEWARE.index(
        "django.middleware.security.SecurityMiddleware"
    )


@pytest.mark.django_db
def test_a_request_gets_a_new_id_returned_in_the_response(client):
    first = client.get("/accounts/login/")
    second = client.get("/accounts/login/")
    assert GENERATED_ID.fullmatch(first["X-Request-ID"])
    assert GENERATED_ID.fullmatch(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming", ["9f1c2a8e-3b7d-4c55-8a0e-7d2f6b1c9e04", "Root=1-67891233-abcdef012345678912345678"]
)
def test_a_valid_incoming_id_is_kept(client, incoming):
    response = client.get("/accounts/login/", headers={"X-Request-ID": incoming})
    assert response["X-Request-ID"] == incoming


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming", ["", "has spaces", 'quote"d', "x" * 129, "<script>", "new\tline"]
)
def test_an_invalid_incoming_id_is_replaced(client, incoming):
    response = client.get("/accounts/login/", headers={"X-Request-ID": incoming})
    assert GENERATED_ID.fullmatch(response["X-Request-ID"])


@pytest.mark.django_db
def test_log_lines_of_a_request_carry_its_id_and_the_user(client, user, other_user, json_lines):
    client.force_login(user)
    foreign = Todo.objects.create(user=other_user, title="Not yours")
    response = client.get(f"/todos/{foreign.pk}/edit/", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 404
    # Django logs the 404 after the view ran (django.request): it belongs to the request.
    (line,) = [entry for entry in json_lines() if entry["logger"] == "django.request"]
    assert line["request_id"] == "req-42"
    assert line["user_id"] == user.pk
    assert line["level"] == "WARNING"


@pytest.mark.django_db
def test_anonymous_requests_have_no_user_and_nothing_outlives_the_request(client, json_lines):
    client.get("/no-such-page/", headers={"X-Request-ID": "req-anon"})
    (line,) = [entry for entry in json_lines() if entry["logger"] == "django.request"]
    assert line["request_id"] == "req-anon" and "user_id" not in line
    # The response is finished: a line logged now on this thread belongs to no request.
    assert logs.current() == {}
    logging.getLogger("todo.test").warning("after the request")
    assert "request_id" not in json_lines()[-1]


@pytest.mark.django_db
def test_logging_in_binds_the_user_for_the_rest_of_the_request(client, user, json_lines):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "a-Str0ng-passphrase"},
        headers={"X-Request-ID": "req-login"},
    )
    assert response.status_code == 302
    # Outside a request, logging in (a shell, a test) binds nothing.
    logs.bind_user(user=user)
    assert logs.current() == {}
    logs.start_request("req-logout")
    try:
        logs.bind_user(user=user)
        assert logs.current() == {"request_id": "req-logout", "user_id": user.pk}
        logs.unbind_user()
        assert logs.current() == {"request_id": "req-logout"}
    finally:
        logs.clear()


def test_a_field_passed_with_extra_wins_over_the_context(json_lines):
    logs.start_request("req-1")
    try:
        logging.getLogger("todo.test").warning("explicit", extra={"request_id": "other"})
    finally:
        logs.clear()
    assert json_lines()[-1]["request_id"] == "other"


def test_the_middleware_sets_the_id_for_the_view_and_the_response(rf):
    seen = {}

    def view(request):
        from django.http import HttpResponse

        seen.update(logs.current(), on_request=request.request_id)
        return HttpResponse()

    response = RequestContextMiddleware(view)(rf.get("/", HTTP_X_REQUEST_ID="abc-1"))
    assert seen == {"request_id": "abc-1", "on_request": "abc-1"}
    assert response["X-Request-ID"] == "abc-1"
    logs.clear()


# --- Celery ---------------------------------------------------------------------------------------


def test_a_task_published_during_a_request_carries_its_id():
    headers = {"task": "notifications.tasks.scan_reminders", "id": "t-1"}
    logs.add_request_id_header(headers=headers)
    assert logs.TASK_HEADER not in headers, "no request, no header"
    logs.start_request("req-7")
    try:
        logs.add_request_id_header(headers=headers)
    finally:
        logs.clear()
    assert headers[logs.TASK_HEADER] == "req-7"


def test_a_task_binds_its_id_and_the_request_id_then_restores_the_caller(json_lines):
    """Eager tasks run inside the request that called them: its fields come back."""
    from celery import Celery

    app = Celery("observability-test", set_as_current=False)

    @app.task(name="todo.tests.echo")
    def echo():
        logging.getLogger("todo.test").warning("inside the task")

    echo.push_request(id="task-1", request_id="req-9")
    logs.start_request("req-caller")
    try:
        logs.bind_task(task_id="task-1", task=echo)
        echo()
        logs.unbind_task(task_id="task-1")
        assert logs.current() == {"request_id": "req-caller"}
    finally:
        echo.pop_request()
        logs.clear()
    (line,) = [entry for entry in json_lines() if entry["message"] == "inside the task"]
    assert (line["task_id"], line["task_name"], line["request_id"]) == (
        "task-1",
        "todo.tests.echo",
        "req-9",
    )


def test_an_eager_task_keeps_the_request_id_of_its_caller():
    from celery import Celery

    app = Celery("observability-test", set_as_current=False)

    @app.task(name="todo.tests.noop")
    def task():
        pass

    task.push_request(id="task-2")
    logs.start_request("req-eager")
    try:
        logs.bind_task(task_id="task-2", task=task)
        assert logs.current()["request_id"] == "req-eager"
        logs.unbind_task(task_id="task-2")
    finally:
        task.pop_request()
        logs.clear()


def test_worker_and_beat_log_through_the_django_settings():
    """Celery's own text handlers would replace the JSON ones without this receiver."""
    from celery import signals

    import config.celery  # noqa: F401 - connects the receivers

    receivers = [ref() for _, ref in signals.setup_logging.receivers]
    assert logs.configure_celery_logging in receivers
