"""Scoped auto-reload while developing (`invoke dev`, and the dev image under Tilt).

The `--reload` mode of each start script (app/bin/) runs its process under this launcher:

    python -m core.devreload [--celery] -m celery --app config worker ...
    python -m core.devreload manage.py runserver ...

The launcher imports the third-party libraries once (`PRELOAD`: Django, Celery, redis,
psycopg, OpenTelemetry; never the settings or the app), then forks the command from that
state, and forks it afresh when watchfiles reports a change to a file it runs. A restart so
costs the app's own imports, a few hundred milliseconds, instead of the libraries' (about
2 s of CPU for web and 3 s for a worker on a 2-core machine). What restarts for what:

- a template or static file: nothing (the local settings read templates on every request,
  and runserver serves static files from their folders);
- a view, form, URL conf, admin, template tag, middleware or migration: web only (web
  watches every `*.py` file, the Celery processes, with `--celery`, use `CeleryFilter`);
- anything else, such as a model, task or service module, or the settings: web, then the
  Celery processes, which start again once web answers again (RELOAD_AFTER_URL), so that on
  a small machine the page comes back first.

A restart stops the old process with SIGTERM and waits for it: runserver stops at once, a
Celery worker warm-shuts down (a running task finishes; acks_late redelivers one cut short).
SIGINT or SIGTERM to the launcher (Ctrl-C, honcho, Kubernetes) stops the process the same
way, then the launcher exits. A process that exits by itself (a syntax error, say) is
started again on the next change.
"""

from __future__ import annotations

import gc
import importlib
import os
import runpy
import signal
import sys
import threading
import time
import traceback
import urllib.request

from watchfiles import PythonFilter, watch

# Settings-free modules that hold nearly all of a process's import time (`python -X
# importtime`): importing them needs no DJANGO_SETTINGS_MODULE, opens no connection and
# starts no thread, so a forked child can use them as if it had imported them itself.
PRELOAD = (
    "django.core.management.commands.runserver",
    "django.core.handlers.wsgi",
    "django.db.models",
    "django.db.backends.postgresql.base",
    "django.forms",
    "django.template.defaulttags",
    "django.views.generic",
    "django_redis.cache",
    "redis",
    "psycopg",
    "psycopg_pool",
    "celery.bin.celery",
    "celery.apps.worker",
    "celery.beat",
    "kombu.transport.redis",
    "opentelemetry.sdk.trace",
    "prometheus_client",
    "whitenoise.middleware",
)
# How long a restarted Celery process waits for web before it starts anyway.
WEB_WAIT_SECONDS = 30
# How long a restarted process may take to stop before it is killed (and that is printed).
STOP_SECONDS = 10


class CeleryFilter(PythonFilter):
    """`*.py` changes that the Celery processes run: not the modules only web imports."""

    ignore_dirs = (*PythonFilter.ignore_dirs, "templatetags", "migrations")
    ignore_entity_patterns = (
        *PythonFilter.ignore_entity_patterns,
        r"^(views|forms|urls|admin|middleware|context_processors)\.py$",
    )


def say(message: str) -> None:
    print(f"devreload: {message}", file=sys.stderr, flush=True)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (a local health URL)
            return True
    except OSError:
        return False


def wait_for(url: str, up: bool, seconds: float, stopping: threading.Event) -> bool:
    """Poll `url` until it answers (`up`) or no longer does, for up to `seconds`; whether
    it got there."""
    deadline = time.monotonic() + seconds
    while answers(url) is not up:
        if time.monotonic() > deadline or stopping.wait(0.02):
            return False
    return True


def run_in_child(command: list[str]) -> int:
    """Fork; in the child run `command` (`-m MODULE ARGS` or `SCRIPT ARGS`) as `python`
    would, and exit. Returns the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 0
    try:
        if command[0] == "-m":
            sys.argv = command[1:]
            runpy.run_module(command[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = command
            runpy.run_path(command[0], run_name="__main__")
    except SystemExit as exit:
        if isinstance(exit.code, int | None):
            code = exit.code or 0
        else:  # sys.exit("message")
            print(exit.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # shown as an uncaught exception would be, then out
        traceback.print_exc()
        code = 1
    # Out without unwinding into the launcher's loop, and without the interpreter's teardown,
    # which walks every module loaded (the command has returned: its own cleanup is done).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def stop(pid: int) -> None:
    """Ask the child to stop (it may be stopping already) and wait for it. Always SIGTERM,
    even on Ctrl-C: the child may have had the terminal's SIGINT too, and a Celery worker
    takes a second SIGINT as a cold shutdown (running tasks killed); SIGTERM is warm."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.01)
    say(f"pid {pid} did not stop in {STOP_SECONDS} s: SIGKILL")
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def next_change(pid: int, watch_filter: PythonFilter, stopping: threading.Event):
    """Block until a file the command runs changes or the launcher is stopped: (the changed
    paths or None, whether the child has exited and been reaped meanwhile)."""
    exited = False
    for changes in watch(
        ".",
        watch_filter=watch_filter,
        stop_event=stopping,
        yield_on_timeout=True,
        rust_timeout=1_000,
    ):
        if not exited and os.waitpid(pid, os.WNOHANG)[0]:
            exited = True
            say("the process exited by itself; it starts again when you save a file it runs")
        if changes:
            return sorted(path for _, path in changes), exited
    return None, exited


def main(argv: list[str]) -> int:
    celery = argv[:1] == ["--celery"]
    command = argv[1:] if celery else argv
    if command in ([], ["-m"]):
        sys.exit("usage: python -m core.devreload [--celery] (-m MODULE | SCRIPT) [ARGS...]")
    for module in PRELOAD:
        importlib.import_module(module)
    gc.freeze()  # the children's collections need not walk what every one of them shares

    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    after_url = os.environ.get("RELOAD_AFTER_URL") if celery else None
    watch_filter = CeleryFilter() if celery else PythonFilter()
    while True:
        pid = run_in_child(command)
        changed, exited = next_change(pid, watch_filter, stopping)
        if changed and after_url:  # web restarts on the same change: see it go first
            wait_for(after_url, False, 1, stopping)
        if not exited:
            stop(pid)
        if changed is None:
            return 0
        say(f"{', '.join(os.path.relpath(path) for path in changed)} changed: restarting")
        if stopping.is_set():
            return 0
        if after_url and not wait_for(after_url, True, WEB_WAIT_SECONDS, stopping):
            say(f"{after_url} did not answer in {WEB_WAIT_SECONDS} s; starting anyway")


if __name__ == "__main__":
    exit_code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)  # like the child: no teardown walk of the preloaded modules
