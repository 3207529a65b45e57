"""The one Celery app for worker and beat: `celery -A config worker|beat`.

It reads the `CELERY_*` Django settings, so every process shares the settings contract.
"""

import gc
import os

from celery import Celery, bootsteps, signals
from celery.beat import PersistentScheduler

from core import liveness
from observability import logs, tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("todo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Worker and beat log through Django's LOGGING (JSON lines with the task's context).
signals.setup_logging.connect(logs.configure_celery_logging)
# Traces (off unless OTEL_EXPORTER_OTLP_ENDPOINT is set): started in each pool process and
# in beat, flushed when a pool process exits (observability/tracing.py).
signals.worker_process_init.connect(tracing.start_worker_process)
signals.worker_process_shutdown.connect(tracing.stop)
signals.beat_init.connect(tracing.start_beat)


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Touch the worker's liveness file from its timer while the worker runs."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        liveness.touch("worker")
        self.tref = worker.timer.call_repeatedly(
            liveness.WORKER_INTERVAL_SECONDS, liveness.touch, ("worker",)
        )

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
        liveness.liveness_file("worker").unlink(missing_ok=True)


app.steps["worker"].add(WorkerHeartbeat)


@signals.worker_ready.connect
def freeze_startup_objects(**kwargs):
    """What the worker imported and built to start lives as long as it: moved out of the
    collector's way (gc.freeze), so neither later collections nor the last one, at exit,
    walk it. That last one took most of a stop, over a second on a busy machine."""
    gc.freeze()


class LivenessScheduler(PersistentScheduler):
    """Beat's default scheduler, recording each tick for `probe beat` and for the Celery
    exporter's beat-lag metric (in Redis, which the exporter's pod can read)."""

    def tick(self, *args, **kwargs):
        from observability import beat

        liveness.touch("beat")
        beat.record_tick()
        return super().tick(*args, **kwargs)
