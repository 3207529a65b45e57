"""The PostgreSQL backend: django-prometheus' instrumented one, with a health check that
costs no round trip.

With `CONN_HEALTH_CHECKS`, Django checks a reused connection at the start of each
request with `SELECT 1`: one round trip before the first real query, on every request.
A server that restarted, or closed the session (idle timeout, a pooler, an
administrator), has already told the client so: it sent its `FATAL` message and closed
the socket, and both wait to be read. So here a connection is usable when libpq still
thinks it is and its socket has nothing to read, which asks the kernel, not the server.
A connection that fails this check is closed and the request opens a new one, as with
Django's check. A path that fails silently (no reply at all) stalls a query the same
way with either check. A session ended in the same instant (its server process not yet
gone) can still pass; the request's first query then fails, as with no check at all.
"""

from __future__ import annotations

import select

from django_prometheus.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        # Between queries nothing is due from the server: anything readable is its goodbye
        # (or an end of file). poll(), unlike select(), takes any file descriptor number.
        socket = select.poll()
        socket.register(self.connection.fileno(), select.POLLIN)
        return not socket.poll(0)
