"""32 threads create todos for several users at once: every create succeeds, none is lost."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from todos.models import Todo

THREADS = 32
CREATES_PER_THREAD = 5
USERS = 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_all_succeed(make_user):
    users = [make_user(f"busy{i}") for i in range(USERS)]

    def create_many(thread: int) -> list[int]:
        client = Client()
        client.force_login(users[thread % USERS])
        statuses = []
        try:
            for n in range(CREATES_PER_THREAD):
                response = client.post(
                    reverse("todos:create"),
                    {"form": "quick", "title": f"t{thread}-{n}", "priority": 2},
                )
                statuses.append(response.status_code)
        finally:
            connection.close()  # each thread has its own connection
        return statuses

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(create_many, range(THREADS)))

    assert all(status == 302 for statuses in results for status in statuses), results
    assert Todo.objects.count() == THREADS * CREATES_PER_THREAD
    titles = set(Todo.objects.values_list("title", flat=True))
    assert titles == {f"t{t}-{n}" for t in range(THREADS) for n in range(CREATES_PER_THREAD)}
    for i, user in enumerate(users):
        expected = sum(1 for t in range(THREADS) if t % USERS == i) * CREATES_PER_THREAD
        assert Todo.objects.filter(user=user).count() == expected
