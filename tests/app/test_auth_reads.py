"""The session and the user of each signed-in request are read together, as one plain SQL
statement (accounts/sessions.py, accounts/backends.py): the same answers as Django's two
ORM reads."""

from datetime import timedelta

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.backends import UserBackend
from accounts.models import Session, User
from accounts.sessions import SessionStore
from accounts.tasks import delete_expired_sessions

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


def test_a_signed_in_request_reads_its_session_and_user_in_one_statement(client, user):
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PROFILE)
    assert response.status_code == 200 and response.wsgi_request.user == user
    reads = [q["sql"] for q in queries.captured_queries if "accounts_" in q["sql"]]
    assert len(reads) == 1, "\n".join(reads)
    assert "FROM accounts_session" in reads[0] and "JOIN accounts_user" in reads[0]


def test_the_session_row_names_its_user_until_sign_out(client, user):
    client.force_login(user)
    key = client.session.session_key
    assert Session.objects.get(pk=key).user_id == user.pk
    client.post(reverse("logout"))
    assert not Session.objects.filter(pk=key).exists()
    assert not Session.objects.filter(user=user).exists()


def test_a_session_whose_user_column_is_empty_still_signs_in(client, user):
    """Such a row (written by another engine, or edited) falls back to reading the user."""
    client.force_login(user)
    Session.objects.update(user=None)
    response = client.get(PROFILE)
    assert response.status_code == 200 and response.wsgi_request.user == user


def test_the_user_id_inside_the_signed_data_decides(client, user, other_user):
    """The column only saves a query: a row naming someone else signs in nobody else."""
    client.force_login(user)
    Session.objects.update(user=other_user)
    response = client.get(PROFILE)
    assert response.status_code == 200 and response.wsgi_request.user.pk == user.pk


def test_the_user_a_request_read_is_not_reused_after_it(client, user):
    client.force_login(user)
    assert client.get(PROFILE).status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert UserBackend().get_user(str(user.pk)) is None
    assert client.get(PROFILE).status_code == 302


def test_expired_sessions_are_deleted_daily(client, user, other_user):
    client.force_login(user)
    live = client.session.session_key
    stale = SessionStore()
    stale["answer"] = 42
    stale.save()
    Session.objects.filter(pk=stale.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert delete_expired_sessions.apply().get() == 1
    assert list(Session.objects.values_list("pk", flat=True)) == [live]


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
