"""Django's ModelBackend, with the user of each signed-in request read without the ORM.

Every signed-in request loads its user. Usually it comes with the session, read in the
same statement (accounts/sessions.py); otherwise (a row whose user column is empty or
names someone else, a check outside a request) one plain SQL statement over the same
columns, turned into a User the way the ORM does (`Model.from_db`): 0.18 ms of CPU where
the ORM's query cost 0.49 ms (docs/performance.md). Signing in, permissions and
`user_can_authenticate` are ModelBackend's.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connections

from accounts.models import User

# The user the current request's session row named, while that request is authenticated.
_session_user: ContextVar[User | None] = ContextVar("session_user", default=None)


@functools.cache
def user_columns(table_alias: str) -> tuple[str, list[str]]:
    """A user's concrete columns for a SELECT (primary key first), and their attribute names."""
    fields = sorted(User._meta.concrete_fields, key=lambda field: not field.primary_key)
    columns = ", ".join(f'{table_alias}."{field.column}"' for field in fields)
    return columns, [field.attname for field in fields]


@functools.cache
def _user_select() -> tuple[str, list[str]]:
    """The SQL reading one user by primary key, and its columns' attribute names."""
    columns, attnames = user_columns("u")
    sql = f"SELECT {columns} FROM {User._meta.db_table} u WHERE u.{User._meta.pk.column} = %s"  # noqa: S608 (names from the model)
    return sql, attnames


def user_pk(value) -> int | None:
    """The user primary key a session holds (a string), or None when it holds none."""
    if value is None:
        return None
    try:
        return User._meta.pk.to_python(value)
    except ValidationError:
        return None


@contextmanager
def session_user(user: User | None):
    """Within the block, get_user() takes `user` when asked for its id, without a query."""
    token = _session_user.set(user)
    try:
        yield
    finally:
        _session_user.reset(token)


class UserBackend(ModelBackend):
    def get_user(self, user_id):
        pk = user_pk(user_id)
        if pk is None:
            return None
        user = _session_user.get()
        if user is None or user.pk != pk:
            user = self._read_user(pk)
        if user is None:
            return None
        return user if self.user_can_authenticate(user) else None

    @staticmethod
    def _read_user(pk: int) -> User | None:
        sql, attnames = _user_select()
        database = User._default_manager.db
        with connections[database].cursor() as cursor:
            cursor.execute(sql, [pk])
            row = cursor.fetchone()
        return None if row is None else User.from_db(database, attnames, row)
