"""Sessions in the project's own table (`accounts.Session`), read with their user.

Every signed-in request needs its session row and its user. Django reads them with two
statements, because the user's id is inside the signed session data. Here the row also
keeps the user's id in a column, and one plain SQL statement reads the session and joins
its user (docs/performance.md, "What the profiles showed"). Authentication takes that
user only while it checks this request (`accounts/middleware.py`, `accounts/backends.py`)
and verifies it exactly as Django does: the backend, the session's password hash, the
active flag. Writes, expiry and `clearsessions` are Django's `db` engine unchanged.
Settings: SESSION_ENGINE = "accounts.sessions".
"""

from __future__ import annotations

import functools

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import db
from django.db import connections
from django.utils import timezone

from accounts.backends import user_columns, user_pk
from accounts.models import Session, User


@functools.cache
def _session_select() -> tuple[str, list[str]]:
    """The SQL reading a live session and its user's fields, and those fields' names."""
    columns, attnames = user_columns("u")
    sql = (
        f"SELECT s.session_data, s.expire_date, {columns} "  # noqa: S608 (names from the models)
        f"FROM {Session._meta.db_table} s "
        f"LEFT JOIN {User._meta.db_table} u ON u.{User._meta.pk.column} = s.user_id "
        "WHERE s.session_key = %s AND s.expire_date > %s"
    )
    return sql, attnames


class SessionStore(db.SessionStore):
    _loaded_user: User | None = None

    @classmethod
    def get_model_class(cls):
        return Session

    @property
    def loaded_user(self) -> User | None:
        """The user this session's row named when it was read (None: nobody or no row)."""
        self._get_session()  # reads the row once per request, as any access does
        return self._loaded_user

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.user_id = user_pk(data.get(SESSION_KEY))
        return session

    def _get_session_from_db(self):
        sql, attnames = _session_select()
        database = self.model.objects.db
        with connections[database].cursor() as cursor:
            cursor.execute(sql, [self.session_key, timezone.now()])
            row = cursor.fetchone()
        if row is None:
            # As Django's: an unknown or expired key starts a new session.
            self._session_key = None
            self._loaded_user = None
            return None
        session_data, expire_date, *user_row = row
        user = User.from_db(database, attnames, user_row) if user_row[0] is not None else None
        self._loaded_user = user
        return Session(
            session_key=self.session_key,
            session_data=session_data,
            expire_date=expire_date,
            user_id=user and user.pk,
        )
