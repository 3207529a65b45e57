"""A streamed response that fails after its headers went out is an error in the metrics
and in the access log, not the 200 the client saw (issue 17, finding 2: the export's
download broke off after 73 bytes and everything recorded a 200)."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import RequestFactory

from core.gunicorn_logging import JsonAccessLogger
from observability import logs
from observability.middleware import RESPONSES, RequestMetricsMiddleware
from tests.processes import APP_DIR, free_port, wait_for

from .conftest import scrape, value

RESPONSES_TOTAL = "django_http_responses_total_by_status_view_method_total"


def broken_stream():
    yield "first line\n"
    raise ConnectionError("database went away")


def count(status: str, view: str) -> float:
    return RESPONSES.labels(status, view, "GET")._value.get()


def test_a_stream_that_fails_counts_as_a_500_and_is_logged(caplog):
    request = RequestFactory().get("/todos/export.csv")
    request.resolver_match = SimpleNamespace(view_name="todos:export")
    before = count("500", "todos:export"), count("200", "todos:export")
    middleware = RequestMetricsMiddleware(lambda r: StreamingHttpResponse(broken_stream()))
    response = middleware(request)
    assert count("500", "todos:export") == before[0]  # not before the stream ends

    chunks = []
    with pytest.raises(ConnectionError):
        chunks.extend(response.streaming_content)

    assert chunks == [b"first line\n"]
    assert (count("500", "todos:export"), count("200", "todos:export")) == (
        before[0] + 1,
        before[1],
    )
    assert request.META[logs.STREAM_ERROR_KEY] == "ConnectionError"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "streamed response failed mid-way" and record.exc_info


def test_a_stream_that_ends_counts_as_its_status():
    request = RequestFactory().get("/todos/export.csv")
    request.resolver_match = SimpleNamespace(view_name="todos:export")
    before = count("200", "todos:export")
    response = RequestMetricsMiddleware(lambda r: StreamingHttpResponse(iter(["a", "b"])))(request)
    assert b"".join(response.streaming_content) == b"ab"
    assert count("200", "todos:export") == before + 1
    assert logs.STREAM_ERROR_KEY not in request.META


def test_the_access_log_records_the_failed_stream_as_an_error(capsys):
    class Config:
        accesslog = "-"
        errorlog = "-"
        loglevel = "info"
        syslog = False
        capture_output = False
        logconfig = None
        logconfig_dict = {}
        logconfig_json = None
        disable_redirect_access_to_syslog = True
        user = group = 0
        umask = 0
        syslog_addr = None
        dogstatsd_tags = ""
        statsd_host = None

    logger = JsonAccessLogger(Config())
    response = SimpleNamespace(status_code=200, headers=[("X-Request-ID", "r1")], sent=73)
    environ = {"PATH_INFO": "/todos/export.csv", logs.STREAM_ERROR_KEY: "OperationalError"}
    logger.access(response, None, environ, timedelta(milliseconds=5))
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert (line["level"], line["status"], line["status_sent"]) == ("ERROR", 500, 200)
    assert line["error"] == "response stream failed: OperationalError"
    assert line["request_id"] == "r1" and line["bytes"] == 73


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_logs_and_counts_an_export_whose_database_goes_away(
    process_env, processes, make_user
):
    """The real thing: production settings under gunicorn, an export big enough to be
    streamed in chunks, and its database connection ended while it streams."""
    user = make_user("exporter", password="a-Str0ng-passphrase")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO todos_todo (user_id, title, notes, priority, status, created_at, "
            "updated_at) SELECT %s, 'todo ' || n, repeat('x', 4000), 2, 'open', now(), now() "
            "FROM generate_series(1, 3000) AS n",
            [user.pk],
        )

    port, metrics_port = free_port(), free_port()
    env = {**process_env, "DJANGO_LOG_FORMAT": "json"}
    web = processes.start(
        "web",
        [str(APP_DIR / "bin" / "web")],
        {**env, "PORT": str(port), "METRICS_PORT": str(metrics_port), "WEB_CONCURRENCY": "1"},
    )
    wait_for(lambda: listening(port), 60, f"web\n{processes.log(web)}")
    cookie = session_cookie(user)

    client = socket.create_connection(("127.0.0.1", port), 10)
    client.sendall(
        f"GET /todos/export.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={cookie}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    head = client.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    # The worker now blocks writing (the client reads nothing); end its database session.
    time.sleep(1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    received = len(head)
    while chunk := client.recv(1 << 16):
        received += len(chunk)
    client.close()
    assert received < 3000 * 4000  # broken off

    def access_line():
        for line in processes.log(web).splitlines():
            if line.startswith("{") and '"gunicorn.access"' in line and "export.csv" in line:
                return json.loads(line)
        return None

    line = wait_for(access_line, 20, f"the access line\n{processes.log(web)}")
    assert (line["level"], line["status"], line["status_sent"]) == ("ERROR", 500, 200)
    assert re.fullmatch(r"response stream failed: \w+", line["error"])
    samples = scrape(metrics_port)
    assert value(samples, RESPONSES_TOTAL, view="todos:export", method="GET", status="500") == 1
    assert not value(samples, RESPONSES_TOTAL, view="todos:export", method="GET", status="200")


def session_cookie(user) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils.module_loading import import_string

    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]  # loads users
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key
