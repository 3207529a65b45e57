"""Suite-wide fixtures. Database tests need the real PostgreSQL and Redis: if either is
unreachable the run stops at once, naming the service and how to start it."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

# Fixtures that start real processes (workers, web, SMTP, Redis), for any test folder.
pytest_plugins = ["tests.processes"]

SERVICES_HELP = {
    "PostgreSQL": (
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/todo",
        "start PostgreSQL (e.g. `sudo service postgresql start`, or "
        "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:17`) "
        "or point DATABASE_URL at one",
    ),
    "Redis": (
        "REDIS_URL",
        "redis://127.0.0.1:6379/9",
        "start Redis (e.g. `sudo service redis-server start`, or "
        "`docker run -d -p 6379:6379 valkey/valkey:8`) or point REDIS_URL at one",
    ),
}


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def pytest_collection_finish(session):
    """Stop before the first test when a database test would meet a missing service."""
    needs_services = any(
        item.get_closest_marker("django_db")
        or {"client", "live_server", "admin_client"} & set(getattr(item, "fixturenames", ()))
        for item in session.items
    )
    if not needs_services:
        return
    from django.conf import settings

    urls = {"PostgreSQL": _db_url(settings.DATABASES["default"]), "Redis": settings.REDIS_URL}
    ports = {"PostgreSQL": 5432, "Redis": 6379}
    for name, (variable, default, fix) in SERVICES_HELP.items():
        url = urls[name] or default
        if not _reachable(url, ports[name]):
            where = f"{urlsplit(url).hostname}:{urlsplit(url).port or ports[name]}"
            pytest.exit(
                f"{name} is unreachable at {where} ({variable}, default {default}): {fix}.",
                returncode=3,
            )


def _db_url(database: dict) -> str:
    return f"postgres://{database.get('HOST') or '127.0.0.1'}:{database.get('PORT') or 5432}"


@pytest.fixture(autouse=True)
def _no_rate_limit_counts(request):
    """Every test client is 127.0.0.1: each database test starts with no sign-up or reset
    counted against it (the counts live in Redis, outside the test's transaction)."""
    if not request.node.get_closest_marker("django_db") and not (
        {"client", "live_server", "admin_client"} & set(request.fixturenames)
    ):
        return
    from django.core.cache import caches

    caches["ratelimit"].delete_pattern("*")  # this cache's keys only (its KEY_PREFIX)


@pytest.fixture
def make_user(django_user_model):
    counter = iter(range(1, 10_000))

    def make(username: str | None = None, password: str = "a-Str0ng-passphrase", **fields):
        number = next(counter)
        username = username or f"user{number}"
        fields.setdefault("email", f"{username}@example.com")
        return django_user_model.objects.create_user(username=username, password=password, **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def other_user(make_user):
    return make_user("bob")


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client
