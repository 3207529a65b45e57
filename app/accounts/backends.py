"""Django's ModelBackend, with the user of each signed-in request read as plain SQL.

Every signed-in request loads its user. Through the ORM that cost about 0.49 ms of CPU,
most of it building the query; one SQL statement over the same columns, turned into a
User the way the ORM does (`Model.from_db`), costs 0.18 ms (docs/performance.md).
Signing in, permissions and `user_can_authenticate` are ModelBackend's.
"""

import functools

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connections

from accounts.models import User


@functools.cache
def _user_select() -> tuple[str, list[str]]:
    """The SQL reading one user's concrete fields by primary key, and their attribute names."""
    fields = User._meta.concrete_fields
    columns = ", ".join(f'"{field.column}"' for field in fields)
    sql = f"SELECT {columns} FROM {User._meta.db_table} WHERE {User._meta.pk.column} = %s"  # noqa: S608 (names from the model)
    return sql, [field.attname for field in fields]


class UserBackend(ModelBackend):
    def get_user(self, user_id):
        try:
            pk = User._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        sql, attnames = _user_select()
        database = User._default_manager.db
        with connections[database].cursor() as cursor:
            cursor.execute(sql, [pk])
            row = cursor.fetchone()
        if row is None:
            return None
        user = User.from_db(database, attnames, row)
        return user if self.user_can_authenticate(user) else None
