"""Real app processes for tests: Celery workers, gunicorn, SMTP and Redis servers.

A pytest plugin (tests/conftest.py loads it): its fixtures serve every test folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

APP_DIR = Path(__file__).resolve().parents[1] / "app"
VENV_BIN = Path(sys.executable).parent


# Prefixes of every variable the app's processes read (docs/contract.md).
APP_ENV_PREFIXES = (
    "DJANGO_",
    "DATABASE_",
    "REDIS_",
    "EMAIL_",
    "CELERY_",
    "GUNICORN_",
    "PROMETHEUS_",
    "METRICS_",
)


def app_env(**env: str) -> dict[str, str]:
    """This process's environment without any variable the app reads, plus `env`: a child
    process sees exactly the settings its test gives it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(APP_ENV_PREFIXES)}
    return {**clean, **env}


def free_port(following: int = 0) -> int:
    """A free port on loopback; with `following`, one whose next `following` ports are free too
    (invoke dev derives its metrics ports from --port)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if all(_is_free(port + step) for step in range(1, following + 1)):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


class SmtpRecorder:
    """A real SMTP server on loopback that records every accepted message.

    `stall_next(n)` makes the next n DATA commands hang (the client is mid-send) until
    `release()`; they are then refused, so a stalled message is never accepted.
    """

    def __init__(self):
        self.messages: list = []
        self.data_started = threading.Event()
        self._stalls = 0
        self._release = threading.Event()

    def stall_next(self, count: int = 1):
        self._stalls = count

    def release(self):
        self._release.set()

    async def handle_DATA(self, server, session, envelope):
        self.data_started.set()
        if self._stalls:
            self._stalls -= 1
            while not self._release.is_set():
                await asyncio.sleep(0.05)
            return "451 Try again later"
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{controller.port}"
    yield recorder
    recorder.release()
    controller.stop()


@pytest.fixture(scope="session")
def collected_static():
    """Production settings serve the hashed files of collectstatic's manifest, as the image
    does after its build-time collectstatic: collect the current ones once per session."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--clear", "-v0"],
        cwd=APP_DIR,
        env=app_env(
            DJANGO_SETTINGS_MODULE="config.settings.production",
            DJANGO_SECRET_KEY="collectstatic-" + "x" * 50,
            REDIS_URL="redis://127.0.0.1:6379/9",
            DATABASE_URL="postgres://unused@127.0.0.1/unused",
        ),
        check=True,
        timeout=300,
    )


@pytest.fixture
def process_env(transactional_db, collected_static):
    """Environment for app processes that share this test's database and a clean broker."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # the suite's own index only
    db = connection.settings_dict
    # Production settings, as in the image, minus the HTTPS redirect (plain HTTP here).
    return app_env(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=settings.SECRET_KEY,  # sessions made by a test stay valid
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_LOG_FORMAT="text",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        DJANGO_LOG_LEVEL="INFO",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    )


class Processes:
    """Start app processes in their own process groups; stop all of them at the end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}-{len(self.running)}.log").open("wb")
        heartbeat_dir = self.tmp_path / f"{name}-state-{len(self.running)}"
        heartbeat_dir.mkdir()
        proc = subprocess.Popen(
            args,
            cwd=APP_DIR,
            env={**env, "CELERY_HEARTBEAT_DIR": str(heartbeat_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_path = log.name
        proc.heartbeat_dir = heartbeat_dir
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 20) -> int:
        """Send `sig` to the process alone, as `docker stop` and the kubelet do: prefork pool
        children that get SIGTERM too die at once (celery/celery#4795), so the warm shutdown
        under test would not be the one production sees. SIGKILL takes the whole group."""
        if proc.poll() is None:
            if sig == signal.SIGKILL:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode

    def log(self, proc: subprocess.Popen) -> str:
        return Path(proc.log_path).read_text(errors="replace")

    def stop_all(self):
        for proc in self.running:
            with contextlib.suppress(ProcessLookupError):
                self.stop(proc, signal.SIGKILL)


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


WORKER = [str(APP_DIR / "bin" / "worker")]
