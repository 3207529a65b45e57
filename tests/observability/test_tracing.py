"""OpenTelemetry traces: one trace from a web request into the Celery task it queued (a
real worker on the real Redis broker), its ids in the log lines, and nothing at all when
tracing is off."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.db import connections
from django.test import Client
from django.urls import reverse

from config.celery import app as celery_app
from observability import logs, tracing
from tests.processes import APP_DIR, app_env, wait_for


@pytest.fixture
def spans():
    """Tracing on in this process, every finished span kept in memory; off afterwards."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert tracing.start("test", span_processor=SimpleSpanProcessor(exporter))
    yield exporter
    # Connections opened meanwhile keep their traced cursors: the next test opens new ones.
    connections.close_all()
    tracing.stop()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_trace_runs_from_the_request_through_the_task_into_sql(process_env, spans):
    # A client made after tracing started: Django builds its middleware chain on first use.
    client = Client()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        response = client.post(
            reverse("accounts:signup"),
            {
                "username": "tracy",
                "email": "tracy@example.com",
                "password1": "correct-horse-battery-9",
                "password2": "correct-horse-battery-9",
            },
        )
        assert response.status_code == 302
        # Sent by the worker's thread, from the message it took off Redis.
        wait_for(lambda: mail.outbox, 20, "the welcome email from the worker")
        task = "notifications.tasks.deliver_email"
        run = wait_for(
            lambda: next((s for s in spans.get_finished_spans() if s.name == f"run/{task}"), None),
            10,
            "the worker's span",
        )

    finished = spans.get_finished_spans()
    (request,) = [s for s in finished if s.name == "POST accounts/signup/"]
    (publish,) = [s for s in finished if s.name == f"apply_async/{task}"]
    trace_id = request.context.trace_id
    assert publish.context.trace_id == trace_id
    assert run.context.trace_id == trace_id
    assert run.parent.span_id == publish.context.span_id  # carried in the message headers
    # The task's SQL, made on the worker's own connection, is part of the same trace.
    task_sql = [s for s in finished if s.parent and s.parent.span_id == run.context.span_id]
    assert any(s.attributes.get("db.system") == "postgresql" for s in task_sql), [
        s.name for s in task_sql
    ]
    # The request's own SQL and Redis calls too.
    in_request = [s for s in finished if s.context.trace_id == trace_id]
    assert {s.attributes.get("db.system") for s in in_request} >= {"postgresql", "redis"}
    assert {s.resource.attributes["service.name"] for s in finished} == {"todo-test"}


def test_log_lines_carry_the_trace_and_span_ids_next_to_the_request_id(spans):
    from opentelemetry import trace

    record = logging.LogRecord("todo", logging.INFO, __file__, 1, "hello", (), None)
    request_id = logs.start_request(None)
    try:
        with trace.get_tracer(__name__).start_as_current_span("work") as span:
            logs.LogContextFilter().filter(record)
    finally:
        logs.clear()
    context = span.get_span_context()
    assert record.request_id == request_id
    assert record.trace_id == f"{context.trace_id:032x}"
    assert record.span_id == f"{context.span_id:016x}"
    # Outside any span there is nothing to add.
    outside = logging.LogRecord("todo", logging.INFO, __file__, 1, "hello", (), None)
    logs.LogContextFilter().filter(outside)
    assert not hasattr(outside, "trace_id")


OFF_CHECK = """
import sys, django
django.setup()
import config.celery
from observability import logs, tracing
assert tracing.start("web") is False
logging_filter = logs.LogContextFilter()
import logging
logging_filter.filter(logging.LogRecord("todo", logging.INFO, "", 1, "hi", (), None))
print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
"""


@pytest.mark.parametrize(
    "env",
    [{}, {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}],
    ids=["no endpoint", "sdk disabled"],
)
def test_off_imports_nothing_of_opentelemetry(env):
    clean = {k: v for k, v in app_env().items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", OFF_CHECK],
        cwd=APP_DIR,
        env={
            **clean,
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "PYTHONPATH": str(APP_DIR),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_endpoint_turns_it_on(monkeypatch):
    for name in ("OTEL_SDK_DISABLED", *tracing.ENDPOINT_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.enabled()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")
    assert tracing.enabled()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE")
    assert not tracing.enabled()
