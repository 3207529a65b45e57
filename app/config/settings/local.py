"""Local development (`invoke dev`, the Tilt local overlay): debug on, embedded defaults.

With no DATABASE_URL/REDIS_URL set this runs on a SQLite file and a filesystem broker
under .dev/ (which `invoke` creates before it starts a process), so a fresh clone needs
no services; set them to use PostgreSQL and Redis. An optional .env file at the
repository root is read first.
"""

import os
from pathlib import Path

import environ

_REPO_ROOT = Path(__file__).resolve().parents[3]
_DEV_STATE = _REPO_ROOT / ".dev"

environ.Env.read_env(_REPO_ROOT / ".env")  # never overrides variables already set
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("DJANGO_LOG_FORMAT", "text")
if "DATABASE_URL" not in os.environ or "REDIS_URL" not in os.environ:
    # Embedded defaults (a checkout, not the image: there both URLs are set and the
    # code directory is read-only): state files live in the repository's .dev/.
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{_DEV_STATE / 'db.sqlite3'}")
    os.environ.setdefault("CELERY_HEARTBEAT_DIR", str(_DEV_STATE))

from .base import *  # noqa: E402, F403
from .base import ALLOWED_HOSTS, CACHES, CELERY_BROKER_TRANSPORT_OPTIONS, TEMPLATES  # noqa: E402

# todo.localhost is the kind cluster's ingress host (kustomize/overlays/local).
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "todo.localhost", ".localhost"]
# Plain static files: no collectstatic needed while developing.
STATIC_ROOT = None  # served from the source folders; nothing is collected here
# Templates read from disk on every request, not cached: a template edit is served at once,
# with no restart (core/devreload.py).
_LOADERS = [
    "django.template.loaders.filesystem.Loader",
    "django.template.loaders.app_directories.Loader",
]
TEMPLATES = [
    {**TEMPLATES[0], "APP_DIRS": False, "OPTIONS": {**TEMPLATES[0]["OPTIONS"], "loaders": _LOADERS}}
]
# Template fragments every visitor shares ({% cache ... using="local" %}) are rendered on
# every request here, so a template edit shows on the next one.
CACHES = {**CACHES, "local": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The dev worker polls its broker every 0.1 s instead of every second: a task sent to the
# filesystem broker starts at once, and an idle worker (Redis: its BRPOP) stops in ~0.1 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "polling_interval": 0.1}
