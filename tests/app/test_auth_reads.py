"""The session and the user of each signed-in request are read as plain SQL
(core/sessions.py, accounts/backends.py): the same answers as Django's ORM reads."""

from datetime import timedelta

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from accounts.backends import UserBackend
from accounts.models import User
from core.sessions import SessionStore

pytestmark = pytest.mark.django_db

PROFILE = reverse("accounts:profile")


def test_the_user_read_has_every_field_the_orm_reads(make_user):
    user = make_user("ada", display_name="Ada", time_zone="Europe/Paris", is_staff=True)
    loaded = UserBackend().get_user(str(user.pk))
    expected = User.objects.get(pk=user.pk)
    for field in User._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded._state.adding is False and loaded._state.db == "default"


@pytest.mark.parametrize("user_id", ["999999999", "not-a-number", ""])
def test_an_unknown_or_malformed_user_id_is_nobody(user_id):
    assert UserBackend().get_user(user_id) is None


def test_an_inactive_user_is_nobody(make_user):
    user = make_user("gone", is_active=False)
    assert UserBackend().get_user(user.pk) is None


def test_a_session_reads_back_what_was_saved():
    store = SessionStore()
    store["answer"] = 42
    store.save()
    again = SessionStore(store.session_key)
    assert again["answer"] == 42 and again.session_key == store.session_key


def test_an_expired_session_is_a_new_empty_one():
    store = SessionStore()
    store["answer"] = 42
    store.save()
    Session.objects.filter(pk=store.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    again = SessionStore(store.session_key)
    assert again.load() == {} and again.session_key is None


def test_signed_in_pages_and_signing_out(client, user):
    client.force_login(user)
    assert client.session[BACKEND_SESSION_KEY] == "accounts.backends.UserBackend"
    assert client.get(PROFILE).status_code == 200
    client.post(reverse("logout"))
    assert client.get(PROFILE).status_code == 302


def test_a_deleted_users_session_is_signed_out(client, user):
    client.force_login(user)
    assert client.session[SESSION_KEY] == str(user.pk)
    user.delete()
    assert client.get(PROFILE).status_code == 302


def test_a_password_change_elsewhere_signs_this_session_out(client, user):
    client.force_login(user)
    user.set_password("an-0ther-passphrase")
    user.save()
    assert client.get(PROFILE).status_code == 302
