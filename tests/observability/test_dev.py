"""`invoke dev` runs the Celery exporter beside the app and says where the metrics are,
and creates the folders the embedded defaults need."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import MockContext, Result

import tasks
from tests.processes import APP_DIR, app_env, free_port


class RecordingManager:
    """honcho's Manager, recording the processes instead of starting them."""

    started: dict[str, dict] = {}

    def __init__(self, printer=None):
        RecordingManager.started = {}
        self.returncode = 0

    def add_process(self, name, command, env, cwd):
        self.started[name] = {"command": command, "env": env, "cwd": cwd}

    def loop(self):
        pass


@pytest.fixture
def dev(monkeypatch, capsys):
    monkeypatch.setattr("honcho.manager.Manager", RecordingManager)

    def run(**options):
        options.setdefault("port", free_port(following=2))
        with pytest.raises(SystemExit) as exit_:
            tasks.dev.body(MockContext(run=Result()), **options)
        assert exit_.value.code == 0
        return RecordingManager.started, capsys.readouterr().out

    return run


def test_dev_runs_the_exporter_and_prints_each_metrics_url(dev):
    started, output = dev()
    assert set(started) == {"web", "worker", "beat", "celery-exporter"}
    assert started["celery-exporter"]["command"].endswith("bin/celery-exporter --reload")
    printed = dict(re.findall(r"Metrics of ([\w-]+): http://127\.0\.0\.1:(\d+)/metrics", output))
    exporters = ("web", "celery-exporter")
    assert printed == {name: started[name]["env"]["METRICS_PORT"] for name in exporters}
    assert len(set(printed.values())) == 2, "each process on its own port"
    assert "METRICS_PORT" not in started["worker"]["env"]


def test_dev_web_only_prints_only_the_web_metrics(dev):
    started, output = dev(web_only=True)
    assert set(started) == {"web"}
    assert re.findall(r"Metrics of (\w+)", output) == ["web"]


def test_dev_creates_the_folders_the_local_settings_write_to(dev, monkeypatch, tmp_path):
    """Without DATABASE_URL/REDIS_URL the processes use SQLite and kombu's filesystem broker
    under .dev/. kombu creates the broker's control folder but not its parent nor the queue
    folder, so `invoke dev` creates them before it starts anything."""
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "o = s.CELERY_BROKER_TRANSPORT_OPTIONS;"
        "print(o['data_folder_in'], o['data_folder_out'], o['control_folder'],"
        "      s.DATABASES['default']['NAME'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=APP_DIR,
        env=app_env(DJANGO_SETTINGS_MODULE="config.settings.local"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    queue_in, queue_out, control, database = map(Path, result.stdout.split())
    assert queue_in == queue_out == tasks.DEV_BROKER_QUEUE
    assert control.parent == tasks.DEV_BROKER_QUEUE.parent
    assert database.parent == tasks.DEV_STATE

    fresh_queue = tmp_path / "broker" / "queue"
    monkeypatch.setattr(tasks, "DEV_BROKER_QUEUE", fresh_queue)
    dev(web_only=True)
    assert fresh_queue.is_dir()
