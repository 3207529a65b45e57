"""Dropping copies of rows from the default cache (Redis) when the rows change.

The signed-in user (accounts/backends.py), their categories (todos/models.py) and unread
count (notifications/models.py) are kept in the cache and dropped by every write that
changes them. A write inside a transaction (the admin saves in one, the reminder scan
claims in one) drops them twice: at once, for what the same transaction reads next, and
when it commits, since another request may have read the old rows meanwhile and put
their copy back. Outside a transaction the second drop follows the first at once. A
write that drops nothing (`QuerySet.update`, raw SQL, one made while Redis was
unreachable) shows when the copy expires, after TIMEOUT.
"""

from functools import partial

from django.core.cache import cache
from django.db import transaction

TIMEOUT = 60  # seconds: how long a copy lives, the bound on staleness of such a write


def forget(keys: list[str]) -> None:
    cache.delete_many(keys)
    transaction.on_commit(partial(cache.delete_many, keys))
