"""Django's ModelBackend, with the user of each signed-in request read as plain SQL.

Every signed-in request loads its user. Through the ORM that cost about 0.49 ms of CPU,
most of it building the query; one SQL statement over the same columns, turned into a
User the way the ORM does (`Model.from_db`), costs 0.18 ms (docs/performance.md).
Signing in, permissions and `user_can_authenticate` are ModelBackend's.
"""

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connections

from accounts.models import User


class UserBackend(ModelBackend):
    def get_user(self, user_id):
        try:
            pk = User._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        fields = User._meta.concrete_fields
        columns = ", ".join(f'"{field.column}"' for field in fields)
        database = User._default_manager.db
        with connections[database].cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {User._meta.db_table} WHERE {User._meta.pk.column} = %s",  # noqa: S608 (names from the model)
                [pk],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        user = User.from_db(database, [field.attname for field in fields], row)
        return user if self.user_can_authenticate(user) else None
