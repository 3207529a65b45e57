"""Django's cached database session engine, storing sessions in `accounts.Session`.

Every session is a row (the truth: it outlives a Redis restart) and a copy in the
default cache, so a request reads its session from Redis, not PostgreSQL; a Redis that
is down reads as a miss and the row answers. It uses only the two hooks Django documents
for extending a database-backed engine: the model class, and the row built on every
save, which here also records the signed-in user's id (or none) in the row's `user`
column. Settings: SESSION_ENGINE = "accounts.sessions" (SESSION_CACHE_ALIAS: default).
"""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import cached_db
from django.core.exceptions import ValidationError

from accounts.models import Session, User


class SessionStore(cached_db.SessionStore):
    @classmethod
    def get_model_class(cls):
        return Session

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.user_id = signed_in_user_id(data)
        return session


def signed_in_user_id(data) -> int | None:
    """The id of the user a session's data names (login() stores it as text), or None."""
    value = data.get(SESSION_KEY)
    if value is None:
        return None
    try:
        return User._meta.pk.to_python(value)
    except ValidationError:
        return None
