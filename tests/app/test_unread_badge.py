"""The header's unread badge (notifications.models.unread_count): read from the cache, and
right on the next page after every write that changes it."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from core import cached
from notifications import models
from notifications.models import Notification

pytestmark = pytest.mark.django_db

LIST = reverse("todos:list")


def badge(client) -> str:
    html = client.get(LIST).content.decode()
    return html.split('id="unread-badge"')[1].split("</a>")[0]


def test_the_badge_follows_new_read_and_all_read_notifications(user_client, user):
    assert "badge-count" not in badge(user_client)
    first = Notification.objects.create(user=user, kind="reminder", title="a")
    Notification.objects.create(user=user, kind="reminder", title="b")
    assert ">2<" in badge(user_client)

    user_client.post(reverse("notifications:read", args=[first.pk]), HTTP_HX_REQUEST="true")
    assert ">1<" in badge(user_client)

    user_client.post(reverse("notifications:read_all"))
    assert "badge-count" not in badge(user_client)


def test_the_badge_is_read_from_the_cache(user_client, user, django_assert_num_queries):
    Notification.objects.create(user=user, kind="reminder", title="a")
    badge(user_client)
    assert models.unread_count(user) == 1
    with django_assert_num_queries(0):
        assert models.unread_count(user) == 1


def test_a_change_without_a_signal_shows_within_the_timeout(user_client, user):
    badge(user_client)
    Notification.objects.bulk_create([Notification(user=user, kind="reminder", title="a")])
    key = models.unread_cache_key(user.pk)
    assert 0 < cache.ttl(key) <= cached.TIMEOUT
    cache.delete(key)  # what the timeout does
    assert ">1<" in badge(user_client)


def test_each_user_has_their_own_badge(user_client, user, other_user):
    Notification.objects.create(user=other_user, kind="reminder", title="theirs")
    assert "badge-count" not in badge(user_client)
    assert models.unread_count(other_user) == 1
