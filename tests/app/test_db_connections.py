"""Persistent database connections (CONN_MAX_AGE) survive the server ending them.

A server restart, an idle timeout, a pooler or an administrator can end the session a
web worker keeps between requests. Django's CONN_HEALTH_CHECKS checks a kept connection
before a request first uses it and opens a new one if it fails, so the user's next
request succeeds instead of failing on the dead connection. Checked on gunicorn as
production runs it, since the test client skips the request start where Django does this.
"""

from urllib.request import Request, urlopen

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.processes import APP_DIR, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def server_processes_of_others() -> set[int]:
    """The server processes of every connection to the test database but this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


def end_session(pid: int) -> None:
    """Ends a server session as an administrator or a restart would, and waits for its
    process to exit: without the timeout, pg_terminate_backend only sends the signal."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        assert cursor.fetchone()[0], f"server process {pid} still running after 5 s"


def test_the_next_request_after_the_server_ended_the_connection_succeeds(
    process_env, processes, user
):
    browser = Client()
    browser.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    port = free_port()
    web = processes.start(
        "web",
        [str(APP_DIR / "bin" / "web")],
        {
            **process_env,
            "PORT": str(port),
            "METRICS_PORT": str(free_port()),
            "WEB_CONCURRENCY": "1",
        },
    )

    def todo_list() -> int:
        request = Request(f"http://127.0.0.1:{port}/", headers={"Cookie": cookie})
        with urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status

    def answers() -> bool:
        try:
            return todo_list() == 200
        except OSError:
            return web.poll() is not None  # exited: stop waiting, fail below

    wait_for(answers, 60, "gunicorn to serve the todo list")
    assert web.poll() is None, processes.log(web)
    [kept] = server_processes_of_others()  # the one worker's persistent connection

    end_session(kept)

    assert todo_list() == 200, processes.log(web)
    [new] = server_processes_of_others()
    assert new != kept
