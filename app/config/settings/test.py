"""The test suite: real PostgreSQL and Redis (never SQLite, never a fake broker)."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-any-deployment-0123456789")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/todo")
# A database index of its own, so tests never touch a developer's queued tasks.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DJANGO_LOG_FORMAT", "text")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES

# The PostgreSQL backend of base.py; any other database is refused.
if DATABASES["default"]["ENGINE"] != "django_prometheus.db.backends.postgresql":
    raise ImproperlyConfigured("Tests run on PostgreSQL only: set DATABASE_URL=postgres://...")

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Fast hashing: tests create many users; production keeps Django's default hasher.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Static files from the source folders, no collectstatic manifest needed.
STATIC_ROOT = None  # served from the source folders; nothing is collected here
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The reminder scan's one claimer runs on the test's own connection, inside its transaction;
# tests/background/test_tasks.py runs two claimers in a test that commits.
REMINDER_SCAN_THREADS = 1
