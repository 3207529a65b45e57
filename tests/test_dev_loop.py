"""`invoke dev` and `invoke manage`: ports checked before anything starts, --reset, --debug,
arguments passed through as given; and the reload launcher of app/core/devreload.py, run for
real on a scratch program."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from invoke import MockContext, Result
from invoke.exceptions import Exit

import tasks
from core.devreload import PRELOAD, CeleryFilter
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


def test_a_taken_debugger_port_says_how_to_move_the_debugger(dev, capsys):
    port, debug_port = free_port(following=2), free_port(following=1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", debug_port))
        taken.listen()
        with pytest.raises(Exit, match="1 port"):
            tasks.dev.body(dev.context, port=port, debug=True, debug_port=debug_port)
    assert f"invoke dev --debug-port {debug_port + 10}" in capsys.readouterr().err


def test_reset_starts_from_an_empty_dev_folder(dev):
    state = tasks.DEV_STATE
    (state / "db.sqlite3").parent.mkdir(parents=True)
    (state / "db.sqlite3").write_text("old")
    dev(port=free_port(following=1), web_only=True, reset=True)
    assert not (state / "db.sqlite3").exists()
    assert tasks.DEV_BROKER_QUEUE.is_dir(), "recreated for the processes"


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


# A scratch program for the launcher: prints its pid, start time and the value of `mark.py`,
# then waits to be stopped.
PROGRAM = """
import os, time
import mark
print("started", os.getpid(), time.time(), mark.VALUE, flush=True)
time.sleep(120)
"""


class Launcher:
    """`python -m core.devreload [OPTIONS] serve.py` in `folder`, its output read line by line."""

    def __init__(self, folder, *options, env=None):
        (folder / "serve.py").write_text(PROGRAM)
        (folder / "mark.py").write_text("VALUE = 1\n")
        self.folder, self.lines = folder, []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.devreload", *options],
            cwd=folder,
            env=app_env(PYTHONPATH=str(APP_DIR), **(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def line(self, starting: str, after: int = 0, timeout: float = 30) -> str:
        """The first output line from index `after` on that starts with `starting`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if line.startswith(starting):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no line starting {starting!r}; output: {self.lines}")

    def started(self, after: int = 0) -> tuple[int, float, str]:
        """(pid, start time, mark) of the program's start printed from line `after` on."""
        _, pid, at, value = self.line("started", after).split()
        return int(pid), float(at), value

    def save(self, name: str, text: str) -> int:
        """Write a file; the index the output is at before it, for `line(after=...)`."""
        count = len(self.lines)
        (self.folder / name).write_text(text)
        return count

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)


@pytest.fixture
def launch(tmp_path):
    launchers = []

    def start(*arguments, env=None):
        launchers.append(Launcher(tmp_path, *arguments, env=env))
        return launchers[-1]

    yield start
    for launcher in launchers:
        if launcher.process.poll() is None:
            launcher.process.kill()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_save_starts_the_program_afresh_with_the_new_code_and_sigterm_stops_both(launch):
    launcher = launch("serve.py")
    first_pid, _, value = launcher.started()
    assert value == "1"
    seen = launcher.save("mark.py", "VALUE = 2\n")
    pid, _, value = launcher.started(after=seen)
    assert value == "2" and pid != first_pid and _gone(first_pid)
    assert launcher.line("devreload: mark.py changed: restarting")
    assert launcher.stop() == 0
    assert _gone(pid), "the program stops with the launcher"


def test_the_celery_mode_ignores_web_only_modules_and_waits_for_web(launch):
    web = http.server.HTTPServer(("127.0.0.1", 0), _Healthz)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{web.server_port}/healthz"
    launcher = launch("--celery", "serve.py", env={"RELOAD_AFTER_URL": url})
    first_pid, _, _ = launcher.started()
    launcher.save("views.py", "VIEW = 1\n")
    time.sleep(1)  # watchfiles reports a change within 0.1 s: long enough to see none
    web.shutdown()  # web restarts on the same save: down, then back 1.5 s later
    web.server_close()
    seen = launcher.save("mark.py", "VALUE = 2\n")
    time.sleep(1.5)
    web = http.server.HTTPServer(("127.0.0.1", web.server_port), _Healthz)
    back = time.time()
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        _, started_at, value = launcher.started(after=seen)
    finally:
        web.shutdown()
        web.server_close()
    assert value == "2" and started_at >= back, "started only once web answered again"
    assert [line for line in launcher.lines if "changed" in line] == [
        "devreload: mark.py changed: restarting"
    ], "views.py restarts web only"
    assert _gone(first_pid)
    assert launcher.stop() == 0


def test_a_program_that_fails_is_reported_and_starts_again_on_the_next_save(launch, tmp_path):
    launcher = launch("serve.py")
    launcher.started()
    seen = launcher.save("mark.py", "VALUE = (\n")  # a syntax error, as while typing
    assert "SyntaxError" in launcher.line("SyntaxError", after=seen)
    assert launcher.line("devreload: the process exited by itself", after=seen)
    seen = launcher.save("mark.py", "VALUE = 3\n")
    assert launcher.started(after=seen)[2] == "3"
    assert launcher.stop() == 0


def test_a_debugger_can_attach_after_every_restart(launch):
    port = free_port()
    launcher = launch("-m", "debugpy", "--listen", f"127.0.0.1:{port}", "serve.py")
    assert launcher.started()[2] == "1"
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # where an IDE attaches
    seen = launcher.save("mark.py", "VALUE = 2\n")
    assert launcher.started(after=seen)[2] == "2"
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert launcher.stop() == 0


def test_the_preloaded_libraries_need_no_settings_and_start_no_thread():
    check = (
        "import importlib, sys, threading\n"
        f"for name in {PRELOAD!r}: importlib.import_module(name)\n"
        "from django.conf import settings\n"
        "own = ('config', 'core', 'todos', 'accounts', 'notifications', 'observability')\n"
        "print(settings.configured, threading.active_count(),"
        " sorted(m for m in sys.modules if m.split('.')[0] in own))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=APP_DIR,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["False", "1", "[]"], result.stdout
