"""bench/loop.py's parts that need no running stack: the scratch copy and its bench page,
the edits, the process tree it waits for, the table and the budgets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import loop
from tests.processes import app_env, free_port, wait_for


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return loop.scratch_copy(tmp_path_factory.mktemp("scratch"))


def test_the_scratch_copy_serves_the_bench_page_with_every_mark(scratch):
    code = (
        "import django; django.setup(); from django.test import Client;"
        "c = Client(HTTP_HOST='127.0.0.1');"
        "print(c.get('/accounts/bench-loop/').content.decode());"
        "print(c.get('/accounts/bench-loop-url-0/').status_code);"
        "print('bench-loop template-0' in c.get('/accounts/login/').content.decode());"
        "print(repr(c.get('/accounts/bench-loop/?task=read').content))"
    )
    env = app_env(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"sqlite:///{scratch / 'db.sqlite3'}",
        CELERY_HEARTBEAT_DIR=str(scratch),
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=scratch / "app",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")[:4]
    assert lines == ["view-0 form-0 service-0", "200", "True", "b''"]  # no task ran yet


def test_an_edit_changes_only_its_mark(scratch, monkeypatch):
    (log := scratch / "log").write_text("")
    stack = loop.Stack(scratch, 0, log)
    [view] = [edit for edit in loop.EDITS if edit.name == "view"]
    monkeypatch.setattr(loop, "SETTLE_SECONDS", 0)
    monkeypatch.setattr(loop, "EDIT_TIMEOUT", 0.05)  # nothing serves: the edit is a miss
    before = (scratch / "app" / view.path).read_text()
    with pytest.raises(loop.LoopError, match="did not settle"):
        stack.edit(view)
    after = (scratch / "app" / view.path).read_text()
    assert after == before.replace('BENCH_VIEW = "view-0"', 'BENCH_VIEW = "view-1"')
    assert stack.marks["view"] == 1


def test_live_update_puts_back_every_file_it_edited_even_when_nothing_serves(tmp_path, monkeypatch):
    root = loop.scratch_copy(tmp_path)  # a checkout whose app/ has the bench page already
    before = {path: path.read_text() for path in (root / "app").rglob("*") if path.is_file()}
    monkeypatch.setattr(loop, "START_TIMEOUT", 0.1)
    target = loop.Target(root, f"http://127.0.0.1:{free_port()}", "todo.localhost")
    with pytest.raises(loop.LoopError, match="never served the bench page"):
        loop.live_update(target, ("template", "view", "task"), 5)
    after = {path: path.read_text() for path in (root / "app").rglob("*") if path.is_file()}
    assert after == before


def test_the_process_tree_includes_grandchildren():
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30; wait"])
    try:
        wait_for(lambda: len(loop._descendants(parent.pid)) >= 2, 10, "two children")
        found = loop._descendants(parent.pid)
        assert all(loop._running(pid) for pid in found)
    finally:
        for pid in loop._descendants(parent.pid) | {parent.pid}:
            subprocess.run(["kill", str(pid)], check=False)
        parent.wait()
    assert not loop._running(parent.pid)


def _run(**times):
    figures = {edit.name: [0.1, 0.2, 0.3] for edit in loop.EDITS} | {"Ctrl-C": [0.5, 0.6]}
    return loop.LoopRun(figures | times, sigkills=[], load=(1.0, 1.0, 1.0))


def test_figures_within_budget_pass():
    run = _run()
    assert all(verdict.passed for verdict in loop.verdicts(run))
    assert not loop.verdicts(_run(view=[2.1] * 3))[1].passed
    assert loop.verdicts(_run(view=[2.1] * 3), slack=1.0)[1].passed  # the cluster's slack
    assert "template  nothing  " in loop.table(run, markdown=False)
    assert "| view | web | 1.5 s | 0.10 | 0.20 | 0.30 | 0 |" in loop.table(run, markdown=True)


@pytest.mark.parametrize(
    ("run", "failed"),
    [
        (_run(view=[1.4, 1.6, 1.7]), "loop view"),  # the median over the budget
        (_run(task=[0.1, None, 0.2]), "loop task"),  # one try never live
        (
            loop.LoopRun(
                _run().times, ["worker | process has not terminated, sending SIGKILL"], (1, 1, 1)
            ),
            "loop",
        ),
    ],
)
def test_a_median_over_budget_a_miss_or_a_sigkill_fails(run, failed):
    assert [v.subject for v in loop.verdicts(run) if not v.passed] == [failed]
