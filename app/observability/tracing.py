"""OpenTelemetry traces: one trace from a web request through the Celery tasks it queued,
with their SQL and Redis calls, exported over OTLP (HTTP/protobuf).

Off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and `OTEL_SDK_DISABLED=true` turns it off again.
Off costs nothing: this module imports no part of OpenTelemetry until tracing is on.
Everything else is the SDK's standard `OTEL_*` variables (docs/settings.md): headers,
sampler, resource attributes, batch sizes.

Each process starts tracing at its own start point, after forking, so the exporter's
thread and connections belong to the process that uses them:
- web: gunicorn's `post_fork` (config/gunicorn.py); Django's middleware is added before
  that, in the master, because `preload_app` builds the middleware chain there.
  `manage.py runserver` (Tilt, `invoke dev`) starts it in manage.py.
- worker: Celery's `worker_process_init`, in every pool process; beat: `beat_init`
  (config/celery.py). The Celery instrumentation carries the trace context in the task
  message headers, so the task's spans join the trace of the request that queued it.
"""

from __future__ import annotations

import os

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_provider = None  # this process's TracerProvider once started


def enabled() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def instrument_django(tracer_provider=None) -> None:
    """Add OpenTelemetry's middleware to the MIDDLEWARE setting (before Django loads it).

    Without a provider its spans go to the global one, which `start` sets later.
    """
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    instrumentor = DjangoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # The probes are not traced (kubelet calls them every few seconds).
        instrumentor.instrument(
            tracer_provider=tracer_provider, excluded_urls="healthz,readyz,livez"
        )


def start(process: str, span_processor=None) -> bool:
    """Trace this process (service `todo-<process>` unless OTEL_SERVICE_NAME names one).

    `span_processor` replaces the OTLP exporter (tests pass an in-memory one); without it
    nothing happens unless tracing is enabled. Returns whether tracing is on.
    """
    global _provider
    if _provider is not None:
        return True
    if span_processor is None and not enabled():
        return False

    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    from observability import logs

    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, but attributes
    # given here would win over them: the default name only when none is set.
    named = os.environ.get("OTEL_SERVICE_NAME")
    provider = TracerProvider(
        resource=Resource.create({} if named else {SERVICE_NAME: f"todo-{process}"})
    )
    if span_processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        span_processor = BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(span_processor)
    trace.set_tracer_provider(provider)

    instrument_django(provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    logs.include_trace_ids(current_ids)
    _provider = provider
    return True


def stop(**_: object) -> None:
    """Export what is still buffered and remove the instrumentation (process exit)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    from observability import logs

    for instrumentor in (
        CeleryInstrumentor(),
        RedisInstrumentor(),
        PsycopgInstrumentor(),
        DjangoInstrumentor(),
    ):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    logs.include_trace_ids(None)
    _provider.shutdown()
    _provider = None


def current_ids() -> dict[str, str]:
    """The trace and span id of the span being recorded now, as the OTLP backends show
    them (hex); empty outside a span."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


# --- Start points (Celery signals, config/celery.py) ------------------------------------------


def start_worker_process(**_: object) -> None:
    start("worker")


def start_beat(**_: object) -> None:
    start("beat")
