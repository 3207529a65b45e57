"""`invoke dev` and `invoke manage`: ports checked before anything starts, a process that
stops by itself reported with its lines, --reset, --debug, arguments passed through as
given; and the reload scope of app/core/devreload.py."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time

import pytest
from honcho.manager import Manager
from invoke import MockContext, Result
from invoke.exceptions import Exit

import tasks
from core.devreload import CeleryFilter
from ops.tools import REPO_ROOT
from tests.observability.test_dev import RecordingManager
from tests.processes import APP_DIR, VENV_BIN, app_env, free_port


@pytest.fixture
def dev(monkeypatch, tmp_path):
    monkeypatch.setattr("honcho.manager.Manager", RecordingManager)
    monkeypatch.setattr(tasks, "DEV_STATE", tmp_path / ".dev")
    monkeypatch.setattr(tasks, "DEV_BROKER_QUEUE", tmp_path / ".dev" / "broker" / "queue")
    context = MockContext(run=Result())

    def run(**options):
        RecordingManager.started = {}
        with pytest.raises(SystemExit):
            tasks.dev.body(context, **options)
        return RecordingManager.started

    run.context = context
    return run


def test_every_port_follows_from_port(dev):
    port = free_port(following=2)
    started = dev(port=port, debug=True, debug_worker=True, debug_port=free_port(following=1))
    assert started["web"]["env"]["PORT"] == str(port)
    assert started["web"]["env"]["METRICS_PORT"] == str(port + 1)
    assert started["celery-exporter"]["env"]["METRICS_PORT"] == str(port + 2)
    web_debug = int(started["web"]["env"]["DEBUGPY_PORT"])
    assert started["worker"]["env"]["DEBUGPY_PORT"] == str(web_debug + 1)
    assert "DEBUGPY_PORT" not in started["beat"]["env"]
    assert started["worker"]["env"]["RELOAD_AFTER_URL"] == f"http://127.0.0.1:{port}/healthz"


def test_a_taken_port_stops_before_anything_starts_and_says_how_to_move(dev, capsys):
    port, RecordingManager.started = free_port(following=2), {}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 2))
        taken.listen()
        with pytest.raises(Exit, match="1 port"):
            tasks.dev.body(dev.context, port=port)
    error = capsys.readouterr().err
    assert f"port {port + 2} on 127.0.0.1 (celery-exporter's METRICS_PORT) is in use" in error
    assert f"invoke dev --port {port + 10}" in error
    assert RecordingManager.started == {} and not dev.context.run.called  # not even migrate


def test_reset_starts_from_an_empty_dev_folder(dev):
    state = tasks.DEV_STATE
    (state / "db.sqlite3").parent.mkdir(parents=True)
    (state / "db.sqlite3").write_text("old")
    dev(port=free_port(following=1), web_only=True, reset=True)
    assert not (state / "db.sqlite3").exists()
    assert tasks.DEV_BROKER_QUEUE.is_dir(), "recreated for the processes"


def test_a_process_that_stops_by_itself_is_named_with_its_last_lines():
    printer = tasks._RecentLines()
    manager = Manager(printer=printer)
    manager.add_process("broken", "echo 'Error: That port is already in use.'; exit 3")
    manager.add_process("fine", "sleep 30")
    manager.loop()
    assert printer.failed == ("broken", "3")
    assert "Error: That port is already in use." in printer.lines["broken"]


def test_manage_passes_its_arguments_exactly_without_a_shell():
    result = subprocess.run(
        [VENV_BIN / "invoke", "manage", "--", "shell", "-c", "print(1+1); print('a  b')"],
        cwd=REPO_ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["2", "a  b"]


@pytest.mark.parametrize(
    ("path", "restarts_celery"),
    [
        ("todos/models.py", True),
        ("notifications/tasks.py", True),
        ("notifications/services.py", True),
        ("config/settings/base.py", True),
        ("todos/views.py", False),
        ("accounts/forms.py", False),
        ("config/urls.py", False),
        ("todos/admin.py", False),
        ("core/templatetags/icons.py", False),
        ("todos/migrations/0003_x.py", False),
        ("templates/base.html", False),
        ("static/css/app.css", False),
    ],
)
def test_the_celery_processes_restart_only_for_code_they_run(path, restarts_celery):
    from watchfiles import Change

    assert CeleryFilter()(Change.modified, str(APP_DIR / path)) is restarts_celery


class _Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _after_web(url: str, changes: list) -> float:
    """When `python -m core.devreload after-web` ran its command (time.time())."""
    argv = [sys.executable, "-m", "core.devreload", "after-web"]
    argv += [sys.executable, "-c", "import time; print(time.time())"]
    env = app_env(RELOAD_AFTER_URL=url, WATCHFILES_CHANGES=json.dumps(changes))
    result = subprocess.run(
        argv, cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=20, check=True
    )
    return float(result.stdout)


def test_after_web_runs_the_command_once_web_answers_on_a_reload():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Healthz)
    answering = []

    def serve():
        answering.append(time.time())
        server.serve_forever()

    threading.Timer(1.5, serve).start()  # the restarted web answers a while later
    try:
        ran = _after_web(f"http://127.0.0.1:{server.server_port}/healthz", [[2, "models.py"]])
    finally:
        server.shutdown()
        server.server_close()
    assert ran >= answering[0]


def test_after_web_does_not_wait_on_the_first_start():
    # Nothing answers there: waiting would take WEB_WAIT_SECONDS (30), past the timeout.
    _after_web(f"http://127.0.0.1:{free_port()}/healthz", [])
