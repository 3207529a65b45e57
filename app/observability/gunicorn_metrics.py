"""gunicorn: every worker's metrics, served by the master (hooks in config/gunicorn.py).

gunicorn runs several worker processes and each counts its own requests. They use
prometheus_client's multiprocess mode: every worker writes its values to files in
`PROMETHEUS_MULTIPROC_DIR`, and the master, which outlives them all, serves the sum on
METRICS_PORT.

prometheus_client picks its storage when it is first imported, and the workers are
forks of the master: so the master sets the folder *before* anything imports
prometheus_client, and this module imports it only inside functions.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FOLDER_PREFIX = "prometheus-web-"  # then the master's pid: prometheus-web-<pid>-<random>

_files: WorkerFiles | None = None


class WorkerFiles:
    """The multiprocess files of gunicorn's workers, gathered and kept small by the master.

    prometheus_client keeps the files of a dead worker so that totals never go down.
    gunicorn replaces each worker after `max_requests`, so those files would pile up, in
    memory (the pod's /tmp) and in the time every scrape takes. When a worker exits, its
    counters and histograms are added into one archive file per type instead. A lock
    makes a scrape see either the worker's file or the archive holding its values, never
    both (a counter that jumped up and back down would read as a reset).
    """

    KINDS = ("counter", "histogram")  # summed across processes; gauges are per process

    def __init__(self, path: Path, owned: bool = False):
        self.path = path
        self.owned = owned  # created here, so removed here when gunicorn exits
        self._lock = threading.Lock()

    @classmethod
    def create(cls) -> WorkerFiles:
        """The folder PROMETHEUS_MULTIPROC_DIR names, else a new one; set for the workers."""
        owned = not os.environ.get(MULTIPROC_ENV)
        if owned:
            _remove_folders_of_dead_masters()
            path = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        else:
            path = Path(os.environ[MULTIPROC_ENV])
            path.mkdir(parents=True, exist_ok=True)
            # Left by a previous master in this container (/tmp outlives a restart):
            # those processes are gone, and their counts belong to no running server.
            for stale in path.glob("*.db"):
                stale.unlink()
        os.environ[MULTIPROC_ENV] = str(path)  # inherited by every worker gunicorn forks
        return cls(path, owned)

    def registry(self):
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        registry.register(self)
        return registry

    def collect(self):
        from prometheus_client.multiprocess import MultiProcessCollector

        with self._lock:
            return list(MultiProcessCollector(None, str(self.path)).collect())

    def worker_exited(self, pid: int) -> None:
        from prometheus_client.mmap_dict import MmapedDict, mmap_key
        from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

        mark_process_dead(pid, str(self.path))
        with self._lock:
            for kind in self.KINDS:
                dead = self.path / f"{kind}_{pid}.db"
                if not dead.exists():
                    continue
                archive = self.path / f"{kind}_archive.db"
                sources = [str(file) for file in (archive, dead) if file.exists()]
                # accumulate=False: bucket counts as stored, not cumulative (the documented
                # way to write merged values back to files).
                merged = MultiProcessCollector.merge(sources, accumulate=False)
                pending = self.path / f"{kind}_archive.pending"  # not *.db: never scraped
                pending.unlink(missing_ok=True)
                values = MmapedDict(str(pending))
                try:
                    for metric in merged:
                        for sample in metric.samples:
                            key = mmap_key(
                                metric.name,
                                sample.name,
                                list(sample.labels),
                                list(sample.labels.values()),
                                metric.documentation,
                            )
                            values.write_value(key, sample.value, 0.0)
                finally:
                    values.close()
                os.replace(pending, archive)
                dead.unlink()

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


def _remove_folders_of_dead_masters() -> None:
    """A master killed outright (SIGKILL, OOM) never ran on_exit: its folder is left."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


# --- The hooks config/gunicorn.py calls ----------------------------------------------------------


def on_starting(server) -> None:
    """Before any worker exists, so that all of them write their files."""
    global _files
    _files = WorkerFiles.create()


def when_ready(server, host: str, port: int) -> None:
    from observability.metrics_server import serve

    try:
        serve(host, port, _files.registry())
    except OSError as error:
        server.log.error("metrics: cannot listen on %s:%d (%s)", host, port, error)
    else:
        server.log.info("Metrics at http://%s:%d/metrics", host or "0.0.0.0", port)  # noqa: S104


def child_exit(server, worker) -> None:
    _files.worker_exited(worker.pid)


def on_exit(server) -> None:
    _files.close()
