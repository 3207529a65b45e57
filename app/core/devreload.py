"""Scoped auto-reload while developing (`invoke dev`, and the dev image under Tilt).

The `--reload` mode of each start script (app/bin/) runs its process under the watchfiles
CLI, which restarts it when a file it runs changes. What restarts for what:

- a template or static file: nothing (the local settings read templates on every request,
  and runserver serves static files from their folders);
- a view, form, URL conf, admin, template tag, middleware or migration: web only (web
  watches every `*.py` file, the Celery processes use `CeleryFilter`, which skips these);
- anything else, such as a model, task or service module, or the settings: web, then the
  Celery processes, which start again once web answers (`after-web` below), so that on a
  small machine the page comes back first.

Keep the module free of Django and Celery imports: the watchfiles CLI imports it for the
filter, in a process that should start in a blink.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request

from watchfiles import PythonFilter

# How long a restarted Celery process waits for web before it starts anyway.
WEB_WAIT_SECONDS = 30


class CeleryFilter(PythonFilter):
    """`*.py` changes that the Celery processes run: not the modules only web imports."""

    ignore_dirs = (*PythonFilter.ignore_dirs, "templatetags", "migrations")
    ignore_entity_patterns = (
        *PythonFilter.ignore_entity_patterns,
        r"^(views|forms|urls|admin|middleware|context_processors)\.py$",
    )


def wait_for(url: str, seconds: float) -> bool:
    """Poll `url` until it answers 200 or `seconds` pass; whether it answered."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (a local health URL)
                return True
        except OSError:
            time.sleep(0.05)
    return False


def after_web(argv: list[str]) -> None:
    """Exec `argv`; on a reload (watchfiles lists the changes in WATCHFILES_CHANGES) first
    wait until web's RELOAD_AFTER_URL answers, since web restarts on the same change."""
    url = os.environ.get("RELOAD_AFTER_URL")
    if url and json.loads(os.environ.get("WATCHFILES_CHANGES") or "[]"):
        try:
            if not wait_for(url, WEB_WAIT_SECONDS):
                print(f"{url} did not answer in {WEB_WAIT_SECONDS} s; starting anyway", flush=True)
        except KeyboardInterrupt:  # stopped again while waiting: nothing to clean up
            sys.exit(0)
    os.execvp(argv[0], argv)  # noqa: S606 (the start script's own command)


if __name__ == "__main__":
    if sys.argv[1:2] != ["after-web"] or len(sys.argv) < 3:
        sys.exit("usage: python -m core.devreload after-web COMMAND [ARGS...]")
    after_web(sys.argv[2:])
