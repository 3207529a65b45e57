"""Sessions in the project's table (accounts/sessions.py): Django's cached database engine,
with the signed-in user named in a column, which lets a user's sessions be ended together."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import backends
from accounts.models import Session, User
from accounts.sessions import SessionStore
from accounts.tasks import delete_expired_sessions
from core import cached

pytestmark = pytest.mark.django_db

PROFILE = reverse("accounts:profile")
PASSWORD = "a-Str0ng-passphrase"


def sign_in(client: Client, user: User) -> Session:
    """Through the login form, as a browser does; returns the session row it left."""
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return Session.objects.get(pk=client.cookies[settings.SESSION_COOKIE_NAME].value)


def test_a_session_reads_back_what_was_saved_and_names_nobody_before_sign_in():
    store = SessionStore()
    store["answer"] = 42
    store.save()
    assert SessionStore(store.session_key)["answer"] == 42
    assert Session.objects.get(pk=store.session_key).user is None


def test_signing_in_names_the_user_and_signing_out_ends_the_session(client, user):
    session = sign_in(client, user)
    assert session.user == user
    assert client.get(PROFILE).status_code == 200

    client.post(reverse("logout"))
    assert not Session.objects.filter(pk=session.pk).exists()
    assert not Session.objects.filter(user=user).exists()
    assert client.get(PROFILE).status_code == 302


def test_a_signed_in_page_reads_its_session_from_the_cache_and_the_table_after_a_loss(client, user):
    sign_in(client, user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PROFILE).status_code == 200
    assert not [query for query in queries if Session._meta.db_table in query["sql"]]

    cache.clear()  # Redis restarted (it keeps nothing on disk)
    assert client.get(PROFILE).status_code == 200


def test_changing_the_password_keeps_this_browser_signed_in_under_a_new_key(client, user):
    before = sign_in(client, user)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "n3w-Passphrase-x",
            "new_password2": "n3w-Passphrase-x",
        },
    )
    assert response.status_code == 302
    assert client.get(PROFILE).status_code == 200
    after = Session.objects.get(user=user)
    assert after.pk != before.pk, "a new key, so a stolen old cookie is worth nothing"


def test_a_password_change_elsewhere_signs_this_browser_out(client, user):
    sign_in(client, user)
    assert client.get(PROFILE).status_code == 200  # the user is in the cache now
    user.set_password("an-0ther-passphrase")
    user.save()
    assert client.get(PROFILE).status_code == 302


def test_deleting_a_user_deletes_their_sessions(client, user, other_user):
    sign_in(client, user)
    bystander = Client()
    sign_in(bystander, other_user)

    user.delete()

    assert list(Session.objects.values_list("user", flat=True)) == [other_user.pk]
    assert client.get(PROFILE).status_code == 302


def test_a_signed_in_request_reads_its_user_from_the_cache(client, user):
    sign_in(client, user)
    client.get(PROFILE)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PROFILE).status_code == 200
    assert not [query for query in queries if User._meta.db_table in query["sql"]]


def test_a_deactivated_user_is_signed_out(client, user):
    sign_in(client, user)
    assert client.get(PROFILE).status_code == 200
    user.is_active = False
    user.save()  # as the admin does: the cached user is dropped
    assert client.get(PROFILE).status_code == 302


def test_a_user_changed_without_a_signal_is_read_again_within_the_cache_timeout(client, user):
    sign_in(client, user)
    assert client.get(PROFILE).status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)  # QuerySet.update sends no signal
    key = backends.user_cache_key(user.pk)
    assert 0 < cache.ttl(key) <= cached.TIMEOUT
    cache.delete(key)  # what the timeout does
    assert client.get(PROFILE).status_code == 302


def test_expired_sessions_are_deleted_daily(client, user):
    live = sign_in(client, user)
    stale = SessionStore()
    stale["answer"] = 42
    stale.save()
    Session.objects.filter(pk=stale.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    delete_expired_sessions.apply().get()

    assert list(Session.objects.values_list("pk", flat=True)) == [live.pk]


def test_the_admin_signs_users_out_everywhere(admin_client, user, other_user):
    phone, laptop, bystander = Client(), Client(), Client()
    phone.force_login(user)
    laptop.force_login(user)
    bystander.force_login(other_user)
    response = admin_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "sign_out_everywhere", "_selected_action": [user.pk]},
        follow=True,
    )
    assert "Ended 2 session(s)." in response.content.decode()
    assert phone.get(PROFILE).status_code == 302 and laptop.get(PROFILE).status_code == 302
    assert bystander.get(PROFILE).status_code == 200
