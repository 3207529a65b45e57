"""Web metrics: served on their own port, never through the site's URLs; gunicorn's
workers are gathered by the master, and a dead worker's counts are kept, compacted."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from observability import metrics_server
from observability.gunicorn_metrics import FOLDER_PREFIX, MULTIPROC_ENV, WorkerFiles
from tests.processes import free_port

from .conftest import Samples, parse_metrics, scrape, value


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def test_the_public_urlconf_has_no_metrics_route():
    routes = list(_routes(get_resolver().url_patterns))
    assert routes, "the URLconf was walked"
    assert [route for route in routes if "metric" in route.lower()] == []


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "/healthz/metrics"])
def test_metrics_paths_are_not_found_on_the_site(client, path):
    assert client.get(path).status_code == 404


@pytest.fixture
def metrics_port():
    port = free_port()
    server = metrics_server.serve("127.0.0.1", port)
    yield port
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_requests_and_queries_are_counted_by_view_and_status(metrics_port, user_client):
    before = scrape(metrics_port)
    assert user_client.get("/").status_code == 200
    assert user_client.get("/todos/999999/edit/").status_code == 404
    after = scrape(metrics_port)

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    responses = "django_http_responses_total_by_status_view_method_total"
    assert delta(responses, view="todos:list", method="GET", status="200") == 1
    assert delta(responses, view="todos:edit", method="GET", status="404") == 1
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert delta(latency, view="todos:list", method="GET") == 1
    assert delta("django_db_execute_total", alias="default", vendor="postgresql") >= 2
    # Counters only: no `_created` series beside them.
    assert not [name for name, _ in after if name.endswith("_created")]


@pytest.mark.django_db
def test_unknown_paths_and_methods_share_one_label_each(metrics_port, client):
    """A client choosing paths and methods cannot add series (label values) at will."""
    before = scrape(metrics_port)
    assert client.get("/no-such-page/").status_code == 404
    assert client.get("/another-one/").status_code == 404
    assert client.generic("BREW", "/accounts/login/").status_code == 405
    after = scrape(metrics_port)

    def delta(**labels):
        name = "django_http_responses_total_by_status_view_method_total"
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta(view="<unnamed view>", method="GET", status="404") == 2
    assert delta(view="login", method="<invalid method>", status="405") == 1
    assert not [key for key in after if "BREW" in dict(key[1]).values()]


def test_the_metrics_port_answers_health_and_nothing_else(metrics_port):
    with urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=5) as response:
        assert response.status == 200
    with pytest.raises(HTTPError) as error:
        urlopen(f"http://127.0.0.1:{metrics_port}/admin/", timeout=5)
    assert error.value.code == 404


def test_runserver_serves_its_own_metrics_and_gunicorn_workers_do_not(monkeypatch):
    port = free_port()
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("METRICS_PORT", str(port))
    monkeypatch.setenv(MULTIPROC_ENV, "/nonexistent")  # a gunicorn worker: the master serves
    metrics_server.serve_this_process()
    with pytest.raises(OSError):
        urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    monkeypatch.delenv(MULTIPROC_ENV)
    metrics_server.serve_this_process()
    with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.status == 200
    # A second server on the same port is logged, not raised: the site matters more.
    metrics_server.serve_this_process()


# --- gunicorn's workers ---------------------------------------------------------------------------

# A process writing metrics the way a gunicorn worker does; prints its pid.
WORKER = textwrap.dedent(
    """
    import sys
    from prometheus_client import Counter, Histogram
    requests = Counter("app_requests", "Requests.", ["view"])
    latency = Histogram("app_latency_seconds", "Latency.", ["view"], buckets=(0.1, 1))
    for view, seconds in [("list", 0.05), ("list", 0.5), (sys.argv[1], 2.0)]:
        requests.labels(view).inc()
        latency.labels(view).observe(seconds)
    import os; print(os.getpid())
    """
)


def exposed(files: WorkerFiles) -> Samples:
    from prometheus_client import generate_latest

    return parse_metrics(generate_latest(files.registry()).decode())


@pytest.fixture
def worker_files(tmp_path, monkeypatch):
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "metrics"))
    files = WorkerFiles.create()
    yield files
    files.close()


def test_dead_workers_are_folded_into_one_archive_without_changing_a_total(worker_files):
    pids = []
    for view in ("edit", "delete", "edit"):
        env = {**os.environ, MULTIPROC_ENV: str(worker_files.path)}
        command = [sys.executable, "-c", WORKER, view]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        pids.append(int(output.stdout))
    totals = exposed(worker_files)
    assert value(totals, "app_requests_total", view="list") == 6
    assert value(totals, "app_requests_total", view="edit") == 2
    assert value(totals, "app_latency_seconds_bucket", view="list", le="0.1") == 3
    assert value(totals, "app_latency_seconds_count", view="edit") == 2

    for pid in pids:
        worker_files.worker_exited(pid)
        assert exposed(worker_files) == totals  # never a dip or a jump in any series
    names = sorted(file.name for file in worker_files.path.iterdir())
    assert names == ["counter_archive.db", "histogram_archive.db"]


def test_the_folder_is_fresh_for_each_master(tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"left by a previous master")
    monkeypatch.setenv(MULTIPROC_ENV, str(folder))
    files = WorkerFiles.create()
    assert list(folder.iterdir()) == []
    files.close()
    assert folder.is_dir(), "a configured folder is not ours to remove"

    monkeypatch.delenv(MULTIPROC_ENV)
    own = WorkerFiles.create()
    assert os.environ[MULTIPROC_ENV] == str(own.path), "set for the workers gunicorn forks"
    own.close()
    assert not own.path.exists()


def test_folders_of_masters_killed_outright_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    # Empty reads as unset; unlike delenv on an unset name, setenv is undone after the
    # test, so the folder create() exports does not leak into later tests.
    monkeypatch.setenv(MULTIPROC_ENV, "")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    left = tmp_path / f"{FOLDER_PREFIX}{int(dead.stdout)}-abc"
    running = tmp_path / f"{FOLDER_PREFIX}{os.getppid()}-def"
    for folder in (left, running):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"")
    files = WorkerFiles.create()
    assert not left.exists() and running.is_dir()
    assert files.path.parent == tmp_path
    assert files.path.name.startswith(f"{FOLDER_PREFIX}{os.getpid()}-")
    files.close()
