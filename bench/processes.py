"""Start the app's own processes (app/bin/web, app/bin/worker) and watch their memory."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import HarnessError
from ops.tools import APP_DIR

READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 40  # longer than gunicorn's graceful timeout (25 s)


class ProcessError(HarnessError):
    pass


class AppProcess:
    """One of the app's start scripts as a child process, its output in a log file."""

    def __init__(
        self,
        script: str,
        env: dict[str, str],
        log_path: Path,
        argv: list[str] | None = None,
        cwd: Path = APP_DIR,
    ):
        self.script = script
        self.env = env
        self.log_path = log_path
        # Another program (the peer's gunicorn) when given; the app's start script by default.
        self.argv = argv or [str(APP_DIR / "bin" / script)]
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> AppProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (a start script, no shell)
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (graceful: gunicorn drains, Celery warm-shuts down), then SIGKILL if stuck."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_until(self, ready, what: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ProcessError(
                    f"{self.script} exited ({self.process.returncode}) before {what}; "
                    f"its log ({self.log_path}):\n{self.log_tail()}"
                )
            if ready():
                return
            time.sleep(0.2)
        raise ProcessError(
            f"{self.script} was not {what} after {timeout:g}s; its log ({self.log_path}):\n"
            f"{self.log_tail()}"
        )

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL)
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class MemoryPeak:
    per_worker_kib: int = 0  # the largest resident set any one worker reached
    total_kib: int = 0  # the largest sum over the workers alive at one moment
    workers_seen: int = 0


class WorkerMemory(threading.Thread):
    """Samples the resident memory of a process's children (gunicorn's workers).

    On Linux each worker's own high-water mark (VmHWM) is read as well, so a peak
    between two samples still counts. Workers recycled by max_requests are new
    children; every child seen is included.
    """

    def __init__(self, parent_pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.parent_pid = parent_pid
        self.interval = interval
        self.peak = MemoryPeak()
        self._seen: set[int] = set()
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            self.sample()
            self._stopped.wait(self.interval)

    def stop(self) -> MemoryPeak:
        self._stopped.set()
        if self.is_alive():
            self.join()
        return self.peak

    def sample(self) -> None:
        children = child_memory(self.parent_pid)
        self._seen.update(children)
        self.peak.workers_seen = len(self._seen)
        self.peak.total_kib = max(self.peak.total_kib, sum(rss for rss, _ in children.values()))
        for rss, high_water in children.values():
            self.peak.per_worker_kib = max(self.peak.per_worker_kib, rss, high_water)


def child_memory(parent_pid: int) -> dict[int, tuple[int, int]]:
    """{pid: (resident KiB, peak resident KiB)} of the direct children of `parent_pid`."""
    if Path("/proc/self/status").exists():
        return _proc_child_memory(parent_pid)
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,rss="],  # noqa: S607 (ps from PATH, macOS and BSDs)
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return ps_child_memory(parent_pid, listing)


def ps_child_memory(parent_pid: int, listing: str) -> dict[int, tuple[int, int]]:
    """The same from `ps -o pid=,ppid=,rss=` output (no high-water mark there)."""
    children = {}
    for line in listing.splitlines():
        pid, ppid, rss = (int(value) for value in line.split())
        if ppid == parent_pid:
            children[pid] = (rss, rss)
    return children


def _proc_child_memory(parent_pid: int) -> dict[int, tuple[int, int]]:
    children = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue  # the process ended while we looked
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) != parent_pid:
            continue
        children[int(entry.name)] = (_kib(fields.get("VmRSS")), _kib(fields.get("VmHWM")))
    return children


def _kib(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


# Fields of /proc/PID/stat after "pid (comm)", counted from the state (man 5 proc).
_PPID, _UTIME, _STIME, _CUTIME, _CSTIME = 1, 11, 12, 13, 14


def tree_cpu_seconds(parent_pid: int) -> float | None:
    """CPU seconds a process and its children have used so far; None without /proc.

    Children it has already reaped count through its cutime/cstime, so gunicorn workers
    recycled by max_requests are included. Sampled before and after a run, it gives the
    server's CPU per request, which other load on the machine barely moves.
    """
    parent = _proc_stat(parent_pid)
    if parent is None:
        return None
    ticks = sum(int(parent[index]) for index in (_UTIME, _STIME, _CUTIME, _CSTIME))
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            child = _proc_stat(int(entry.name))
            if child is not None and int(child[_PPID]) == parent_pid:
                ticks += int(child[_UTIME]) + int(child[_STIME])
    return ticks / os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # no /proc, or the process ended
    return text.rpartition(")")[2].split()  # the name may hold spaces and parentheses
