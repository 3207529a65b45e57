"""Log context: the request id, user id and task id on every log line they concern.

One context variable holds the fields of the request or task being handled;
`LogContextFilter` (on the stdout handler, config/settings/base.py) copies them onto
each record, and the JSON formatter writes them out. Web binds them per request
(middleware.py). A task published while a request or another task is handled carries
the request id in its message headers; the worker binds it, with the task's id and
name, while the task runs. So `request_id` follows one request from web into every
task it caused.
When tracing is on (tracing.py), each line also carries the `trace_id` and `span_id` of
the span it was logged in, so a log line leads to its trace and back.
"""

from __future__ import annotations

import logging
import logging.config
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "X-Request-ID"
# Set in the WSGI environ when a streamed response fails after its headers went out
# (middleware.py); the access log (core/gunicorn_logging.py) then records an error.
STREAM_ERROR_KEY = "todo.stream_error"
# The Celery message header that carries the request id into the worker.
TASK_HEADER = "request_id"
# A request id from the client or a proxy (Envoy, Heroku-style routers) is kept when it
# looks like an id; anything else (too long, spaces, quotes) is replaced by a new one.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:;=/+-]{1,128}")

# Replaced, never mutated: a dict set in one request or task is never seen by another.
_fields: ContextVar[dict[str, object] | None] = ContextVar("log_fields", default=None)
_task_tokens: dict[str, Token] = {}
# Set by tracing.start: the current span's ids. None while tracing is off.
_trace_ids: Callable[[], dict[str, str]] | None = None


def current() -> dict[str, object]:
    """The fields bound to what this thread is handling now (empty outside requests/tasks)."""
    return _fields.get() or {}


def bind(**fields: object) -> None:
    _fields.set({**current(), **fields})


def unbind(*names: str) -> None:
    _fields.set({key: value for key, value in current().items() if key not in names})


def start_request(incoming: str | None) -> str:
    """Bind a new request: its id is the incoming one if it is valid, else a new one."""
    request_id = incoming if incoming and _VALID_REQUEST_ID.fullmatch(incoming) else None
    request_id = request_id or uuid.uuid4().hex
    _fields.set({"request_id": request_id})
    return request_id


def clear(**_: object) -> None:
    _fields.set(None)


def include_trace_ids(source: Callable[[], dict[str, str]] | None) -> None:
    global _trace_ids
    _trace_ids = source


class LogContextFilter(logging.Filter):
    """Adds the bound fields to every record (a field passed with `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = {**current(), **_trace_ids()} if _trace_ids else current()
        for key, value in fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


# --- Celery: the request id travels in the task message ------------------------------------


def add_request_id_header(headers: dict | None = None, **_: object) -> None:
    """before_task_publish: a task published while handling a request carries its id."""
    request_id = current().get("request_id")
    if request_id and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


def bind_task(task_id: str | None = None, task=None, **_: object) -> None:
    """task_prerun: the task's log lines carry its id and name, and the request's id."""
    fields: dict[str, object] = {"task_id": task_id, "task_name": task.name}
    # From the message; an eager task (never published) runs inside its caller's request.
    if request_id := task.request.get(TASK_HEADER) or current().get("request_id"):
        fields["request_id"] = request_id
    # A token, not a clear, on the way out: an eager task runs inside the request that
    # called it, whose fields must come back afterwards.
    _task_tokens[task_id] = _fields.set(fields)


def unbind_task(task_id: str | None = None, **_: object) -> None:
    """task_postrun: restore what was bound before the task."""
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _fields.reset(token)


def configure_celery_logging(**_: object) -> None:
    """setup_logging: worker and beat log through the Django LOGGING settings too.

    Without a receiver for this signal Celery replaces the root logger's handlers with
    its own text format, and the JSON lines (with these fields) would be lost.
    """
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# --- Users: bound once the view knows them (middleware.py), and on log in/out ------------------


def bind_user(user=None, **_: object) -> None:
    if user is not None and "request_id" in current():
        bind(user_id=user.pk)


def unbind_user(**_: object) -> None:
    unbind("user_id")


def connect_signals() -> None:
    from celery import signals as celery_signals
    from django.contrib.auth import signals as auth_signals
    from django.core import signals as request_signals

    celery_signals.before_task_publish.connect(add_request_id_header, dispatch_uid=__name__)
    celery_signals.task_prerun.connect(bind_task, dispatch_uid=__name__)
    celery_signals.task_postrun.connect(unbind_task, dispatch_uid=__name__)
    auth_signals.user_logged_in.connect(bind_user, dispatch_uid=__name__)
    auth_signals.user_logged_out.connect(unbind_user, dispatch_uid=__name__)
    # After the response is sent: nothing logged later on this thread claims the request.
    request_signals.request_finished.connect(clear, dispatch_uid=__name__)
