"""gunicorn loads the app once, in the master, so that recycled workers serve at once.

Without preload_app every worker imported Django itself: a worker replaced after
max_requests took seconds of CPU before serving, and workers that reached max_requests
together left the server with none (docs/performance.md, "Worker recycling").
"""

import gc
import os
import re
import runpy
import secrets
import urllib.request
from pathlib import Path

import pytest

from bench.processes import child_memory
from tests.processes import APP_DIR, app_env, free_port, wait_for


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        return response.status, response.read().decode()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def gunicorn(processes):
    """app/bin/web with one worker replaced every 5 requests."""
    port, metrics_port = free_port(), free_port()
    env = app_env(
        **{
            "DJANGO_SETTINGS_MODULE": "config.settings.bench",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": os.environ["REDIS_URL"],
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "METRICS_PORT": str(metrics_port),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_MAX_REQUESTS": "5",
            "GUNICORN_MAX_REQUESTS_JITTER": "0",
        }
    )
    web = processes.start("web", [str(APP_DIR / "bin" / "web")], env)
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return get(f"{base_url}/healthz")[0] == 200
        except OSError:
            return web.poll() is not None  # exited: stop waiting, fail below

    wait_for(answers, 60, "gunicorn to answer /healthz")
    if web.poll() is not None:
        pytest.fail(f"gunicorn exited:\n{processes.log(web)}")
    return web.pid, base_url, f"http://127.0.0.1:{metrics_port}/metrics"


@pytest.mark.slow
def test_the_app_is_imported_once_in_the_master_and_workers_are_its_forks(gunicorn):
    master, _, _ = gunicorn
    (worker,) = child_memory(master)
    # The master did the import (a second of CPU or so); the worker, forked from it
    # afterwards, has only answered the readiness request.
    assert cpu_seconds(worker) < cpu_seconds(master) / 3


@pytest.mark.slow
def test_recycled_workers_serve_and_their_metrics_add_up_in_the_master(gunicorn):
    master, base_url, metrics_url = gunicorn
    workers = set()
    for _ in range(12):  # the worker is replaced after every 5 requests
        assert get(f"{base_url}/bench/limit/") == (200, "ok\n")
        workers |= set(child_memory(master))
    assert len(workers) >= 2
    _, metrics = get(metrics_url)
    counted = re.search(
        r'^django_http_responses_total_by_status_view_method_total\{[^}]*view="bench-limit"'
        r"[^}]*\} (\S+)$",
        metrics,
        re.MULTILINE,
    )
    assert counted is not None, metrics[:2000]
    assert float(counted.group(1)) == 12


def test_workers_are_forked_with_the_imported_app_frozen():
    """Frozen objects are never walked by the worker's garbage collector (pre_fork)."""
    config = runpy.run_path(str(APP_DIR / "config" / "gunicorn.py"))
    before = gc.get_freeze_count()
    try:
        config["pre_fork"](None, None)
        assert gc.get_freeze_count() > before + 10_000  # this process's imports, at least
    finally:
        gc.unfreeze()
