"""OpenTelemetry traces: one trace from a web request into the Celery task it queued (a
real worker on the real Redis broker), its ids in the log lines, and nothing at all when
tracing is off."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPRedirectHandler, Request, build_opener

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.db import connections
from django.test import Client
from django.urls import reverse

from config.celery import app as celery_app
from observability import logs, tracing
from tests.processes import APP_DIR, WORKER, app_env, free_port, wait_for


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


class OtlpReceiver(ThreadingHTTPServer):
    """A collector's OTLP/HTTP traces endpoint on loopback that keeps every span it gets."""

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        self.spans: list[tuple[str, str, str]] = []  # (service, span name, trace id)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    service = next(
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    )
                    for scope_spans in resource_spans.scope_spans:
                        receiver.spans += [
                            (service, span.name, span.trace_id.hex()) for span in scope_spans.spans
                        ]
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


@pytest.fixture
def otlp_receiver():
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_and_a_prefork_worker_export_one_trace_over_otlp(
    process_env, processes, otlp_receiver
):
    """The real start points: gunicorn's post_fork and Celery's worker_process_init, each
    exporting to the endpoint the OTEL_* variables name."""
    env = {
        **process_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_receiver.server_port}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 0.2 s instead of 5 s
        "WEB_CONCURRENCY": "1",
        "CELERY_WORKER_CONCURRENCY": "1",
    }
    port = free_port()
    processes.start("web", [str(APP_DIR / "bin" / "web")], {**env, "PORT": str(port)})
    worker = processes.start("worker", WORKER, env)
    wait_for(lambda: _ready(port), 30, "the web process")

    token = "t" * 32  # the CSRF cookie's secret, sent back in the form as Django expects
    form = {
        "username": "otlp",
        "email": "otlp@example.com",
        "password1": "correct-horse-battery-9",
        "password2": "correct-horse-battery-9",
        "csrfmiddlewaretoken": token,
    }
    signup = Request(
        f"http://127.0.0.1:{port}/accounts/signup/",
        data=urlencode(form).encode(),
        headers={"Cookie": f"csrftoken={token}"},
    )
    assert _status(signup) == 302

    def task_span():
        return next(
            (s for s in otlp_receiver.spans if s[:2] == ("todo-worker", f"run/{DELIVER_EMAIL}")),
            None,
        )

    run = wait_for(task_span, 60, f"the worker's span\n{processes.log(worker)}")
    request = next(s for s in otlp_receiver.spans if s[:2] == ("todo-web", "POST accounts/signup/"))
    assert run[2] == request[2]  # one trace id from web to worker


DELIVER_EMAIL = "notifications.tasks.deliver_email"


def _ready(port: int) -> bool:
    try:
        return _status(Request(f"http://127.0.0.1:{port}/readyz")) == 200
    except OSError:
        return False


def _status(request: Request) -> int:
    class NoRedirect(HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status
    except HTTPError as error:
        return error.code
