"""The one front door for every task: `uv run invoke --list`.

Day-to-day tasks live here; each infrastructure concern has its own collection
in `ops/` (see docs/contract.md for the layout).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections import deque

from honcho.printer import Printer
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import bench, cluster, image, k8s, prerequisites, preview, release, tf
from ops.tools import APP_DIR, REPO_ROOT

DEV_STATE = REPO_ROOT / ".dev"
# The filesystem broker's queue of the local settings without REDIS_URL (config/settings/
# base.py): kombu does not create it, nor .dev/ where the SQLite database goes.
DEV_BROKER_QUEUE = DEV_STATE / "broker" / "queue"


def _local_env(**extra: str) -> dict[str, str]:
    """Environment for processes started on this machine: local settings unless told
    otherwise, and the folders their embedded defaults write to."""
    DEV_BROKER_QUEUE.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env.update(extra)
    return env


class _RecentLines(Printer):
    """honcho's printer, keeping each process's last lines to show if one stops on its own."""

    def __init__(self):
        super().__init__(sys.stdout)
        self.lines, self.failed, self.stopping = {}, None, False

    def write(self, message):
        super().write(message)
        text = message.data
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        if message.name != "system":
            self.lines.setdefault(message.name, deque(maxlen=25)).extend(text.splitlines())
        elif " received" in text or text.startswith("sending "):  # Ctrl-C, or a stop began
            self.stopping = True
        elif (stopped := re.match(r"(\S+) stopped \(rc=(-?\d+)\)", text)) and not self.stopping:
            self.failed = self.failed or stopped.groups()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not listen on host:port now (bound the way servers bind)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _free_or_exit(ports: dict[str, tuple[int, str]]) -> None:
    """Stop before starting anything if a port is taken, naming the option that moves it."""
    taken = [(what, port, fix) for what, (port, fix) in ports.items() if port_in_use(port)]
    for what, port, fix in taken:
        print(
            f"error: port {port} on 127.0.0.1 ({what}) is in use; `lsof -i :{port}` shows by "
            f"whom. Fix: stop that, or move the ports: {fix}",
            file=sys.stderr,
        )
    if taken:
        raise Exit(f"{len(taken)} port(s) taken, nothing was started", code=1)


@task(
    help={
        "port": "port of the site (default 8000); web's metrics use PORT+1, the exporter's PORT+2",
        "web_only": "run only the web process (no Celery worker, beat or exporter)",
        "reset": "delete .dev/ first (SQLite database, broker queue, beat schedule): a fresh start",
        "debug": "run web under debugpy, listening on 127.0.0.1:DEBUG_PORT (docs/dev-loop.md)",
        "debug_worker": "run the worker under debugpy too, on DEBUG_PORT+1",
        "debug_port": "debugpy's port for web (default 5678)",
    }
)
def dev(
    c, port=8000, web_only=False, reset=False, debug=False, debug_worker=False, debug_port=5678
):
    """Run web, worker, beat and the Celery exporter with scoped auto-reload (Ctrl-C stops all).

    A template edit needs no restart; a view, form or URL edit restarts web; another code edit
    restarts web, then the Celery processes once web answers (app/core/devreload.py).
    """
    from honcho.manager import Manager

    # Each process (its start script app/bin/NAME) and the ports it listens on.
    processes = {"web": {"PORT": port, "METRICS_PORT": port + 1}}
    if not web_only:
        processes |= {"worker": {}, "beat": {}, "celery-exporter": {"METRICS_PORT": port + 2}}
    if debug:
        processes["web"]["DEBUGPY_PORT"] = debug_port
    if debug_worker and not web_only:
        processes["worker"]["DEBUGPY_PORT"] = debug_port + 1
    fixes = {"DEBUGPY_PORT": f"--debug-port {debug_port + 10}"}
    _free_or_exit(
        {
            f"{name}'s {key}": (value, fixes.get(key, f"invoke dev --port {port + 10}"))
            for name, ports in processes.items()
            for key, value in ports.items()
        }
    )
    if reset and DEV_STATE.exists():
        shutil.rmtree(DEV_STATE)
        print(f"Removed {DEV_STATE} (a DATABASE_URL or REDIS_URL you set is left as it is)")

    env = _local_env(HOST="127.0.0.1", CELERY_HEARTBEAT_DIR=str(DEV_STATE))
    env["RELOAD_AFTER_URL"] = f"http://127.0.0.1:{port}/healthz"
    print("Applying migrations...", flush=True)
    c.run(f"{APP_DIR / 'bin' / 'migrate'}", env=env, pty=False)

    manager = Manager(printer=(printer := _RecentLines()))
    for name, ports in processes.items():
        process_env = env | {key: str(value) for key, value in ports.items()}
        command = f"{APP_DIR / 'bin' / name} --reload"
        manager.add_process(name, command, env=process_env, cwd=str(APP_DIR))
    print(f"\n  Open http://127.0.0.1:{port}/  (Ctrl-C stops everything)", flush=True)
    for name, ports in processes.items():
        if "METRICS_PORT" in ports:
            print(f"  Metrics of {name}: http://127.0.0.1:{ports['METRICS_PORT']}/metrics")
        if "DEBUGPY_PORT" in ports:
            print(f"  Debugger for {name}: attach to 127.0.0.1:{ports['DEBUGPY_PORT']} (debugpy)")
    print(flush=True)
    manager.loop()
    if printer.failed:
        name, code = printer.failed
        last = "\n  ".join(printer.lines.get(name, ["(nothing)"]))
        print(
            f"\nerror: {name} stopped by itself (exit {code}), so invoke dev stopped the rest. "
            f"Its last lines:\n  {last}\nSee docs/troubleshooting.md, section invoke dev.",
            file=sys.stderr,
        )
    sys.exit(manager.returncode)


@task(
    help={
        "k": "only tests matching this pytest -k expression",
        "path": "test path(s) to run (default: the whole suite under tests/)",
        "no_browser": "skip the Playwright browser tests",
    },
    iterable=["path"],
)
def test(c, k="", path=None, no_browser=False):
    """Run the whole test suite on the real PostgreSQL and Redis (see README).

    Checks first that the machine has every tool the selected tests run (Chromium, wrk,
    redis-server, Node.js and the tools of package-lock.json, terraform) and stops at once,
    naming the one command that installs them, when one is missing.
    """
    prerequisites.preflight(path, skip=("tests/browser",) if no_browser else ())
    args = ["pytest", *(["-k", k] if k else []), *(["-m", "not browser"] if no_browser else [])]
    c.run(shlex.join([*args, *(path or [])]), pty=sys.stdout.isatty())


@task
def lint(c):
    """Lint and check formatting (ruff), then Django's system checks and missing migrations."""
    c.run("ruff check .")
    c.run("ruff format --check .")
    env = _local_env()
    c.run(f"python {APP_DIR / 'manage.py'} check", env=env)
    c.run(f"python {APP_DIR / 'manage.py'} makemigrations --check --dry-run", env=env)


@task
def fmt(c):
    """Format the code and apply safe lint fixes (ruff)."""
    c.run("ruff check --fix .")
    c.run("ruff format .")


@task
def manage(c):
    """Run a Django management command locally, its arguments passed as given (no shell):
    `invoke manage -- createsuperuser`, `invoke manage -- shell -c 'print(1+1)'`."""
    # invoke joins what follows `--` with spaces; the command line itself keeps the quoting.
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else c.remainder.split()
    command = [sys.executable, str(APP_DIR / "manage.py"), *args]
    sys.exit(subprocess.run(command, env=_local_env(), check=False).returncode)  # noqa: S603


ns = Collection(
    dev,
    test,
    lint,
    fmt,
    manage,
    prerequisites.setup,
    prerequisites.doctor,
    cluster.up,
    cluster.down,
    release.deploy,
    release.rollback,
    release.argocd,
    cluster.ns,
    image.ns,
    k8s.ns,
    preview.ns,
    tf.ns,
    bench.ns,
)
