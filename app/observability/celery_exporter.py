"""The Celery exporter: task events, queue depths and beat's last tick as Prometheus metrics.

`app/bin/celery-exporter` runs it; the base runs it as the one-replica Deployment
`celery-exporter`. Workers send task events (CELERY_WORKER_SEND_TASK_EVENTS), this
process receives all of them and counts, so the totals cover every worker without a
metrics port on the workers (whose prefork children would each need their own
files). Queue depths and beat's tick are read from the broker at each scrape.

Metrics (METRICS_PORT, default 9808, path /metrics):

  celery_task_received_total{task}            a worker took a task off the broker
  celery_task_succeeded_total{task}
  celery_task_failed_total{task,exception}    exception: the class name only
  celery_task_retried_total{task}             a retry was scheduled (it is received again)
  celery_task_runtime_seconds{task}           histogram of finished runs (succeeded, failed)
  celery_task_rows_failed_total{task}         rows a batch task could not process
                                              (observability/batch.py; its log has the ids)
  celery_queue_length{queue}                  messages waiting in the broker
  celery_broker_up                            1 if this scrape could read the queues
  celery_workers                              workers whose heartbeats are current
  celery_beat_tick_age_seconds                since beat's last tick (absent before the first)

Events are fire-and-forget: those sent while this process restarts are not counted,
and the counters start again from zero (Prometheus' rate() handles the reset).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from observability.batch import ROWS_FAILED_EVENT

logger = logging.getLogger("observability.celery_exporter")  # also when run as __main__

DEFAULT_PORT = 9808  # the port Celery exporters customarily use
RUNTIME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))
# Task states kept to name finished tasks and time failures; bounded memory.
MAX_TASKS_IN_MEMORY = 10_000
MAX_RECONNECT_DELAY_SECONDS = 30
_EXCEPTION_NAME = re.compile(r"[A-Za-z_][\w.]*")


def exception_name(text: str | None) -> str:
    """`ValueError('bad id 7')` -> `ValueError`: messages would make a label per value."""
    match = _EXCEPTION_NAME.match(text or "")
    return match.group(0) if match else "unknown"


class TaskEvents:
    """Counts task events; also tracks workers, for the scrape-time gauges."""

    def __init__(self, registry: CollectorRegistry):
        from celery.events.state import State

        self.state = State(max_tasks_in_memory=MAX_TASKS_IN_MEMORY)
        self.lock = threading.Lock()  # events arrive on one thread, scrapes on others
        self.received = Counter(
            "celery_task_received_total",
            "Tasks that a worker received from the broker.",
            ["task"],
            registry=registry,
        )
        self.succeeded = Counter(
            "celery_task_succeeded_total",
            "Tasks that finished without an exception.",
            ["task"],
            registry=registry,
        )
        self.failed = Counter(
            "celery_task_failed_total",
            "Tasks that raised an exception (after their last retry, or without retries).",
            ["task", "exception"],
            registry=registry,
        )
        self.retried = Counter(
            "celery_task_retried_total",
            "Task runs that scheduled a retry.",
            ["task"],
            registry=registry,
        )
        self.rows_failed = Counter(
            "celery_task_rows_failed_total",
            "Rows a batch task could not process and skipped (the worker's log has the ids).",
            ["task"],
            registry=registry,
        )
        self.runtime = Histogram(
            "celery_task_runtime_seconds",
            "How long finished task runs took.",
            ["task"],
            buckets=RUNTIME_BUCKETS,
            registry=registry,
        )

    def handle(self, event: dict) -> None:
        with self.lock:
            self.state.event(event)
            kind = event.get("type", "")
            if not kind.startswith("task-"):
                return
            task = self.state.tasks.get(event.get("uuid"))
            name = (task and task.name) or event.get("name") or "unknown"
            if kind == "task-received":
                self.received.labels(name).inc()
            elif kind == "task-succeeded":
                self.succeeded.labels(name).inc()
                if event.get("runtime") is not None:
                    self.runtime.labels(name).observe(event["runtime"])
            elif kind == "task-failed":
                self.failed.labels(name, exception_name(event.get("exception"))).inc()
                if task is not None and task.started and event.get("timestamp"):
                    self.runtime.labels(name).observe(max(0.0, event["timestamp"] - task.started))
            elif kind == "task-retried":
                self.retried.labels(name).inc()
            elif kind == ROWS_FAILED_EVENT:
                self.rows_failed.labels(name).inc(max(0, int(event.get("count") or 0)))

    def workers_alive(self) -> int:
        with self.lock:
            return sum(1 for worker in self.state.workers.values() if worker.alive)


def queue_lengths(app, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue (a queue the broker does not hold is empty)."""
    from kombu.exceptions import ChannelError

    lengths = {}
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        for queue in queues:
            with connection.channel() as channel:
                try:
                    lengths[queue] = channel.queue_declare(queue, passive=True).message_count
                except ChannelError:
                    lengths[queue] = 0
    return lengths


class BrokerCollector:
    """Gauges read when Prometheus scrapes: queue depths, workers, beat's last tick."""

    def __init__(self, app, events: TaskEvents, last_tick):
        self.app = app
        self.events = events
        self.last_tick = last_tick

    def collect(self):
        length = GaugeMetricFamily(
            "celery_queue_length", "Messages waiting in the broker.", labels=["queue"]
        )
        try:
            for queue, count in queue_lengths(self.app, sorted(self.app.amqp.queues)).items():
                length.add_metric([queue], count)
            broker_up = 1
        except Exception as error:
            logger.warning("exporter: cannot read the queues (%s)", error)
            broker_up = 0
        yield length
        yield GaugeMetricFamily(
            "celery_broker_up", "1 if the exporter could read the broker.", value=broker_up
        )
        yield GaugeMetricFamily(
            "celery_workers",
            "Workers whose event heartbeats are current.",
            value=self.events.workers_alive(),
        )
        try:
            tick = self.last_tick()
        except Exception as error:
            logger.warning("exporter: cannot read beat's last tick (%s)", error)
            tick = None
        if tick is not None:
            yield GaugeMetricFamily(
                "celery_beat_tick_age_seconds",
                "Seconds since celery beat's last scheduler tick.",
                value=max(0.0, time.time() - tick),
            )


def capture_forever(app, handler) -> None:
    """Receive every event from the broker; reconnect with backoff when it goes away."""
    delay = 1
    while True:
        try:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1)
                logger.info("exporter: receiving Celery events")
                delay = 1
                receiver = app.events.Receiver(connection, handlers={"*": handler})
                # wakeup: ask the workers for a heartbeat now, so they count at once.
                receiver.capture(limit=None, timeout=None, wakeup=True)
        except Exception as error:
            logger.warning("exporter: event stream lost (%s); retrying in %ds", error, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY_SECONDS)


def main() -> None:
    import django

    django.setup()
    from config.celery import app
    from observability import beat
    from observability.metrics_server import serve

    registry = CollectorRegistry()
    events = TaskEvents(registry)
    registry.register(BrokerCollector(app, events, beat.last_tick))
    # HOST: the interface to listen on, as for app/bin/web (invoke dev: loopback only).
    serve(os.environ.get("HOST", ""), int(os.environ.get("METRICS_PORT", DEFAULT_PORT)), registry)
    capture_forever(app, events.handle)


if __name__ == "__main__":
    main()
