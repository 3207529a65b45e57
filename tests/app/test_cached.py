"""core.cached.forget: a cached copy dropped by a write inside a transaction stays dropped."""

import pytest
from django.core.cache import cache
from django.db import transaction

from core.cached import forget

KEY = "test-cached-copy"


@pytest.mark.django_db(transaction=True)
def test_a_copy_put_back_before_the_commit_is_dropped_when_it_commits():
    cache.set(KEY, "old row")
    try:
        with transaction.atomic():
            forget([KEY])
            assert cache.get(KEY) is None  # what the same transaction reads next
            cache.set(KEY, "old row")  # another request read the rows before this commit
        assert cache.get(KEY) is None
    finally:
        cache.delete(KEY)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_write_leaves_the_copy_dropped_once():
    cache.set(KEY, "row")
    with pytest.raises(RuntimeError), transaction.atomic():
        forget([KEY])
        raise RuntimeError("the write fails")
    assert cache.get(KEY) is None  # read again from the rows, which did not change
