"""The health check of a reused database connection (core/postgresql/base.py) asks the
kernel, not the server, and still notices a server that ended the session."""

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_connection():
    """A connection of its own: ending its server session leaves the test's untouched."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def server_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def last_statement(pid: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


def end_session(pid: int) -> None:
    """Ends a server session the way an administrator or a restart would, and waits for
    its process to exit: without the timeout, pg_terminate_backend only sends the signal,
    and the check could run before the server has said goodbye."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        assert cursor.fetchone()[0], f"server process {pid} still running after 5 s"


def test_the_check_sends_nothing_to_the_server(own_connection):
    pid = server_pid(own_connection)
    with own_connection.cursor() as cursor:
        cursor.execute("SELECT 'the last statement'")

    assert own_connection.is_usable()
    assert last_statement(pid) == "SELECT 'the last statement'"


def test_a_session_the_server_ended_fails_the_check(own_connection):
    pid = server_pid(own_connection)
    end_session(pid)

    assert not own_connection.is_usable()


def test_a_request_after_the_server_ended_the_session_gets_a_new_connection(own_connection):
    """What CONN_HEALTH_CHECKS promises: the first query after a restart does not fail."""
    pid = server_pid(own_connection)
    end_session(pid)
    new_connections = []

    def record(sender, connection, **kwargs):
        new_connections.append(connection)

    connection_created.connect(record)
    try:
        own_connection.close_if_unusable_or_obsolete()  # what the start of a request runs
        new_pid = server_pid(own_connection)
    finally:
        connection_created.disconnect(record)

    assert new_pid != pid
    assert new_connections == [own_connection]


def test_a_closed_connection_fails_the_check(own_connection):
    own_connection.connection.close()

    assert not own_connection.is_usable()
