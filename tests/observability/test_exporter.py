"""The Celery exporter's parts: counting task events, reading queue depths and beat's
last tick from the real Redis, and staying up when the broker is not."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from celery import Celery
from celery.events import Event
from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest

from config.celery import app as celery_app
from observability import beat
from observability.celery_exporter import (
    BrokerCollector,
    TaskEvents,
    exception_name,
    queue_lengths,
)
from tests.processes import free_port

from .conftest import Samples, parse_metrics


def samples(registry: CollectorRegistry) -> Samples:
    return parse_metrics(generate_latest(registry).decode())


def event(kind: str, task_id: str, **fields) -> dict:
    """An event as the Receiver hands it over (worker fields plus the local receipt time)."""
    now = fields.pop("timestamp", time.time())
    fields.update(hostname="worker@a", clock=1, local_received=now, timestamp=now)
    return Event(kind, uuid=task_id, **fields)


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def events(registry):
    return TaskEvents(registry)


def test_task_events_are_counted_by_task_name(events, registry):
    name = "notifications.tasks.deliver_email"
    events.handle(event("task-received", "t1", name=name, args="(1,)", kwargs="{}"))
    events.handle(event("task-started", "t1"))
    events.handle(event("task-succeeded", "t1", runtime=0.2, result="'sent'"))
    events.handle(event("task-received", "t2", name=name, args="(2,)", kwargs="{}"))
    events.handle(event("task-started", "t2", timestamp=time.time() - 3))
    events.handle(event("task-retried", "t2", exception="SMTPException('down')"))
    events.handle(event("task-received", "t2", name=name, args="(2,)", kwargs="{}"))
    events.handle(event("task-started", "t2", timestamp=time.time() - 1.5))
    events.handle(event("task-failed", "t2", exception="SMTPException('still down')"))
    found = samples(registry)
    task = (("task", name),)
    assert found[("celery_task_received_total", task)] == 3
    assert found[("celery_task_succeeded_total", task)] == 1
    assert found[("celery_task_retried_total", task)] == 1
    assert found[("celery_task_failed_total", (("exception", "SMTPException"), *task))] == 1
    # One succeeded run (0.2 s) and one failed run (from its start, about 1.5 s).
    assert found[("celery_task_runtime_seconds_count", task)] == 2
    assert 1.6 < found[("celery_task_runtime_seconds_sum", task)] < 2.5


def test_rows_a_batch_task_could_not_process_are_counted(events, registry):
    """observability/batch.py sends them as a custom task event (alert TodoBatchRowsFailed)."""
    name = "notifications.tasks.scan_reminders"
    events.handle(event("task-received", "t1", name=name, args="()", kwargs="{}"))
    events.handle(event("task-rows-failed", "t1", name=name, count=3))
    events.handle(event("task-succeeded", "t1", runtime=0.5, result="{}"))
    events.handle(event("task-rows-failed", "t9", name=name, count=2))  # started before us
    found = samples(registry)
    assert found[("celery_task_rows_failed_total", (("task", name),))] == 5
    assert found[("celery_task_succeeded_total", (("task", name),))] == 1


def test_an_event_for_a_task_received_before_the_exporter_started_is_still_counted(
    events, registry
):
    events.handle(event("task-succeeded", "t9", runtime=0.1))
    assert samples(registry)[("celery_task_succeeded_total", (("task", "unknown"),))] == 1


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ValueError('bad id 7')", "ValueError"),
        ("smtplib.SMTPServerDisconnected('gone')", "smtplib.SMTPServerDisconnected"),
        ("", "unknown"),
        (None, "unknown"),
        ("'quoted'", "unknown"),
    ],
)
def test_only_the_exception_class_becomes_a_label(text, name):
    assert exception_name(text) == name


def test_workers_count_while_their_heartbeats_are_current(events):
    assert events.workers_alive() == 0
    now = time.time()
    worker = {"hostname": "worker@a", "freq": 2.0, "local_received": now, "timestamp": now}
    events.handle(Event("worker-heartbeat", clock=1, active=0, processed=0, **worker))
    assert events.workers_alive() == 1
    events.handle(Event("worker-offline", clock=2, **worker))
    assert events.workers_alive() == 0


# --- Read from the broker at scrape time: the real Redis ------------------------------------------


@pytest.fixture
def queue_name():
    name = f"obs-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(name)
    client.close()


def test_queue_lengths_are_the_messages_waiting_in_redis(queue_name):
    assert queue_lengths(celery_app, [queue_name]) == {queue_name: 0}
    for _ in range(3):
        celery_app.send_task("notifications.tasks.scan_reminders", queue=queue_name)
    assert queue_lengths(celery_app, [queue_name]) == {queue_name: 3}


@pytest.fixture
def beat_tick_key():
    client = redis.Redis.from_url(settings.REDIS_URL)
    saved = client.get(beat.TICK_KEY)
    client.delete(beat.TICK_KEY)
    yield client
    client.delete(beat.TICK_KEY)
    if saved is not None:
        client.set(beat.TICK_KEY, saved)
    client.close()


def test_beat_ticks_are_recorded_where_another_process_reads_them(beat_tick_key):
    assert beat.last_tick() is None
    beat.record_tick(now=1_700_000_000.5)
    assert beat_tick_key.get(beat.TICK_KEY) == b"1700000000.5"
    assert beat.last_tick() == 1_700_000_000.5


def test_the_scrape_reports_queues_workers_and_beat_lag(events, registry, beat_tick_key):
    registry.register(BrokerCollector(celery_app, events, beat.last_tick))
    found = samples(registry)
    assert found[("celery_broker_up", ())] == 1
    assert ("celery_queue_length", (("queue", "celery"),)) in found
    assert found[("celery_workers", ())] == 0
    assert ("celery_beat_tick_age_seconds", ()) not in found, "no tick yet: no age"
    beat.record_tick(now=time.time() - 42)
    age = samples(registry)[("celery_beat_tick_age_seconds", ())]
    assert 41 < age < 60


def test_a_broker_that_is_down_is_reported_not_raised(events, registry, caplog):
    unreachable = Celery("unreachable", broker=f"redis://127.0.0.1:{free_port()}/0")
    unreachable.conf.broker_connection_timeout = 1

    def last_tick():
        raise redis.ConnectionError("connection refused")

    registry.register(BrokerCollector(unreachable, events, last_tick))
    found = samples(registry)
    assert found[("celery_broker_up", ())] == 0
    assert ("celery_beat_tick_age_seconds", ()) not in found
    assert "cannot read the queues" in caplog.text


def test_a_failing_tick_record_never_stops_beat(monkeypatch, caplog):
    monkeypatch.setattr(settings, "REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setitem(beat._recording, "failing", False)
    beat._client.cache_clear()
    try:
        beat.record_tick()
        beat.record_tick()
    finally:
        beat._client.cache_clear()
    warnings = [r for r in caplog.records if "cannot record the tick" in r.getMessage()]
    assert len(warnings) == 1, "logged once while it keeps failing"
