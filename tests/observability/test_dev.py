"""`invoke dev` runs the Celery exporter beside the app and says where the metrics are."""

from __future__ import annotations

import re

import pytest
from invoke import MockContext, Result

import tasks


class RecordingManager:
    """honcho's Manager, recording the processes instead of starting them."""

    started: dict[str, dict] = {}

    def __init__(self):
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
        with pytest.raises(SystemExit) as exit_:
            tasks.dev.body(MockContext(run=Result()), **options)
        assert exit_.value.code == 0
        return RecordingManager.started, capsys.readouterr().out

    return run


def test_dev_runs_the_exporter_and_prints_each_metrics_url(dev):
    started, output = dev()
    assert set(started) == {"web", "worker", "beat", "exporter"}
    assert started["exporter"]["command"].endswith("bin/celery-exporter --reload")
    printed = dict(re.findall(r"Metrics of (\w+): http://127\.0\.0\.1:(\d+)/metrics", output))
    assert printed == {name: started[name]["env"]["METRICS_PORT"] for name in ("web", "exporter")}
    assert len(set(printed.values())) == 2, "each process on its own port"
    assert "METRICS_PORT" not in started["worker"]["env"]


def test_dev_web_only_prints_only_the_web_metrics(dev):
    started, output = dev(web_only=True)
    assert set(started) == {"web"}
    assert re.findall(r"Metrics of (\w+)", output) == ["web"]
