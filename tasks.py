"""The one front door for every task: `uv run invoke --list`.

Day-to-day tasks live here; each infrastructure concern has its own collection
in `ops/` (see docs/contract.md for the layout).
"""

from __future__ import annotations

import os
import sys

from invoke import Collection, task

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


@task(
    help={
        "port": "port for the web process (default 8000)",
        "web_only": "run only the web process (no Celery worker, beat or exporter)",
    }
)
def dev(c, port=8000, web_only=False):
    """Run web, worker, beat and the Celery exporter with auto-reload (Ctrl-C stops all)."""
    from honcho.manager import Manager

    env = _local_env(HOST="127.0.0.1", PORT=str(port), CELERY_HEARTBEAT_DIR=str(DEV_STATE))
    print("Applying migrations...", flush=True)
    c.run(f"{APP_DIR / 'bin' / 'migrate'}", env=env, pty=False)

    # Each process: its start script, and the port of its Prometheus metrics (observability/).
    processes = {"web": ("web --reload", 9100)}
    if not web_only:
        processes |= {
            "worker": ("worker --reload", None),
            "beat": ("beat --reload", None),
            "exporter": ("celery-exporter --reload", 9808),
        }
    manager = Manager()
    for name, (command, metrics_port) in processes.items():
        process_env = env if metrics_port is None else {**env, "METRICS_PORT": str(metrics_port)}
        manager.add_process(name, f"{APP_DIR / 'bin'}/{command}", env=process_env, cwd=str(APP_DIR))
    print(f"\n  Open http://127.0.0.1:{port}/  (Ctrl-C stops everything)", flush=True)
    for name, (_, metrics_port) in processes.items():
        if metrics_port is not None:
            print(f"  Metrics of {name}: http://127.0.0.1:{metrics_port}/metrics", flush=True)
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
    """Run the whole test suite on the real PostgreSQL and Redis (see README).

    Checks first that the machine has every tool the selected tests run (Chromium, wrk,
    redis-server, Node.js and the tools of package-lock.json, terraform) and stops at once,
    naming the one command that installs them, when one is missing.
    """
    prerequisites.preflight(path, skip=("tests/browser",) if no_browser else ())
    args = ["pytest"]
    if k:
        args += ["-k", repr(k)]
    if no_browser:
        args += ["-m", "'not browser'"]
    args += path or []
    c.run(" ".join(args), pty=sys.stdout.isatty())


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
    """Run a Django management command locally: `invoke manage -- createsuperuser`."""
    c.run(
        f"python {APP_DIR / 'manage.py'} {c.remainder}", env=_local_env(), pty=sys.stdout.isatty()
    )


ns = Collection(dev, test, lint, fmt, manage, prerequisites.setup)
ns.add_collection(image.ns)
ns.add_collection(k8s.ns)
ns.add_collection(preview.ns)
ns.add_collection(tf.ns)
ns.add_task(cluster.up)
ns.add_task(cluster.down)
ns.add_collection(cluster.ns)
ns.add_task(release.deploy)
ns.add_task(release.rollback)
ns.add_collection(release.argocd)
ns.add_collection(bench.ns)
