"""The one front door for every task: `uv run invoke --list`. Day-to-day tasks live here, each
infrastructure concern's collection in `ops/` (docs/contract.md)."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys

from invoke import Collection, task
from invoke.exceptions import Exit

from ops import bench, cluster, image, k8s, prerequisites, preview, release, tf
from ops.tools import APP_DIR, REPO_ROOT

DEV_STATE = REPO_ROOT / ".dev"
# The filesystem broker's queue of the local settings without REDIS_URL (config/settings/
# base.py): kombu creates neither it nor .dev/, where the SQLite database goes.
DEV_BROKER_QUEUE = DEV_STATE / "broker" / "queue"


def local_env(**extra: str) -> dict[str, str]:
    """Local settings unless told otherwise, and the folders their defaults write to."""
    DEV_BROKER_QUEUE.mkdir(parents=True, exist_ok=True)
    return {"DJANGO_SETTINGS_MODULE": "config.settings.local", **os.environ, **extra}


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
    """Run web, worker, beat and the Celery exporter with scoped auto-reload (honcho; Ctrl-C
    stops all): docs/dev-loop.md says which edit restarts what (app/core/devreload.py)."""
    from honcho.manager import Manager

    # Each process (its start script app/bin/NAME) and the ports it listens on.
    processes = {"web": {"PORT": port, "METRICS_PORT": port + 1}}
    if not web_only:
        processes |= {"worker": {}, "beat": {}, "celery-exporter": {"METRICS_PORT": port + 2}}
    if debug:
        processes["web"]["DEBUGPY_PORT"] = debug_port
    if debug_worker and not web_only:
        processes["worker"]["DEBUGPY_PORT"] = debug_port + 1
    taken = 0
    for name, ports in processes.items():
        for key, value in ports.items():
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", value)):  # nothing listens there
                    continue
            taken += 1
            move = f"--port {port + 10}"
            if key == "DEBUGPY_PORT":
                move = f"--debug-port {debug_port + 10}"
            print(
                f"error: port {value} on 127.0.0.1 ({name}'s {key}) is in use; `lsof -i :{value}` "
                f"shows by whom. Fix: stop that, or move the ports: invoke dev {move}",
                file=sys.stderr,
            )
    if taken:
        raise Exit(f"{taken} port(s) taken, nothing was started", code=1)
    if reset:
        shutil.rmtree(DEV_STATE, ignore_errors=True)  # a DATABASE_URL or REDIS_URL stays as set
    env = local_env(HOST="127.0.0.1", CELERY_HEARTBEAT_DIR=str(DEV_STATE))
    env["RELOAD_AFTER_URL"] = f"http://127.0.0.1:{port}/healthz"
    c.run(str(APP_DIR / "bin" / "migrate"), env=env, pty=False)
    manager = Manager()
    print(f"\n  Open http://127.0.0.1:{port}/  (Ctrl-C stops everything)")
    for name, ports in processes.items():
        process_env = env | {key: str(value) for key, value in ports.items()}
        command = f"{APP_DIR / 'bin' / name} --reload"
        manager.add_process(name, command, env=process_env, cwd=str(APP_DIR))
        if "METRICS_PORT" in ports:
            print(f"  Metrics of {name}: http://127.0.0.1:{ports['METRICS_PORT']}/metrics")
        if "DEBUGPY_PORT" in ports:
            print(f"  Debugger for {name}: attach to 127.0.0.1:{ports['DEBUGPY_PORT']} (debugpy)")
    print(flush=True)
    manager.loop()
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
    """Run the whole test suite on the real PostgreSQL and Redis (see README); first stop,
    naming `invoke setup`, if a tool the selected tests run is missing."""
    prerequisites.preflight(path, skip=("tests/browser",) if no_browser else ())
    args = ["pytest", *(["-k", k] if k else []), *(["-m", "not browser"] if no_browser else [])]
    c.run(shlex.join([*args, *(path or [])]), pty=sys.stdout.isatty())


@task
def lint(c):
    """Lint and check formatting (ruff), then Django's system checks and missing migrations."""
    c.run("ruff check . && ruff format --check .")
    manage_py = f"python {APP_DIR / 'manage.py'}"
    c.run(f"{manage_py} check && {manage_py} makemigrations --check --dry-run", env=local_env())


@task
def fmt(c):
    """Format the code and apply safe lint fixes (ruff)."""
    c.run("ruff check --fix . && ruff format .")


@task
def manage(c):
    """Run a Django management command locally, its arguments passed as given (no shell):
    `invoke manage -- createsuperuser`, `invoke manage -- shell -c 'print(1+1)'`."""
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else c.remainder.split()
    command = [sys.executable, str(APP_DIR / "manage.py"), *args]
    sys.exit(subprocess.run(command, env=local_env(), check=False).returncode)  # noqa: S603


ns = Collection(
    *(dev, test, lint, fmt, manage, prerequisites.setup, prerequisites.doctor),
    *(cluster.up, cluster.down, release.deploy, release.rollback, release.argocd),
    *(cluster.ns, image.ns, k8s.ns, preview.ns, tf.ns, bench.ns),
)
