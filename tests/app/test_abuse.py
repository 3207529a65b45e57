"""Abuse limits: the sign-in lockout (django-axes, PostgreSQL) and the rate limits of the
actions that send email (django-ratelimit, Redis), with the counts of the finding that asked
for them: 50 wrong passwords, 20 resets for one address, 30 sign-ups from one client."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessLog
from django.core import mail
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import User
from core.clientip import client_ip
from notifications.models import Notification
from tests.processes import free_port

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
RESET = reverse("password_reset")
SIGNUP = reverse("accounts:signup")
PASSWORD = "a-Str0ng-passphrase"


def log_in(client, username, password, address="127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_fifty_wrong_passwords_lock_the_account_even_for_the_right_one(client, user, settings):
    answers = [log_in(client, "alice", f"guess-{n}").status_code for n in range(50)]
    limit = settings.AXES_FAILURE_LIMIT
    assert answers[: limit - 1] == [200] * (limit - 1)  # the form, "wrong password"
    assert answers[limit - 1 :] == [429] * (50 - limit + 1)
    response = log_in(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert "Sign-in paused" in response.content.decode()
    assert f"paused for {settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in (
        response.content.decode()
    )
    assert "_auth_user_id" not in client.session
    # The lockout holds for the account from any other address too.
    assert log_in(client, "alice", PASSWORD, address="192.0.2.9").status_code == 429


def test_the_lockout_ends_after_its_duration(client, user, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "alice", f"guess-{n}")
    assert log_in(client, "alice", PASSWORD).status_code == 429
    # As if the pause had passed: attempts older than the cool-off no longer count.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME
    )
    response = log_in(client, "alice", PASSWORD)
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)


def test_one_address_guessing_many_accounts_is_locked_out(client, make_user, settings):
    make_user("victim")
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"someone{n}", "guess", address="198.51.100.7")
    assert log_in(client, "victim", PASSWORD, address="198.51.100.7").status_code == 429
    assert log_in(client, "victim", PASSWORD, address="198.51.100.8").status_code == 302
    assert not AccessLog.objects.exists()  # no row per successful sign-in: nothing grows


def test_twenty_resets_for_one_address_send_the_limit_only(
    client, user, settings, django_capture_on_commit_callbacks
):
    limit = int(settings.PASSWORD_RESET_RATE_LIMIT.split("/")[0])
    answers = []
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(20):
            # From 20 addresses, and with the address in other cases: still one address.
            email = user.email.upper() if n % 2 else user.email
            answers.append(
                client.post(RESET, {"email": email}, REMOTE_ADDR=f"192.0.2.{n}").status_code
            )
    assert answers == [302] * limit + [429] * (20 - limit)
    assert len(mail.outbox) == 0  # the queued tasks send; the requests sent nothing


def test_resets_for_many_addresses_from_one_client_are_limited(client, settings):
    limit = int(settings.PASSWORD_RESET_RATE_LIMIT.split("/")[0])
    answers = [
        client.post(RESET, {"email": f"someone{n}@example.com"}).status_code for n in range(10)
    ]
    assert answers == [302] * limit + [429] * (10 - limit)
    assert "Too many attempts" in client.post(RESET, {"email": "x@example.com"}).content.decode()


def sign_up(client, n: int, **extra):
    return client.post(
        SIGNUP,
        {
            "username": f"bot{n}",
            "email": f"bot{n}@example.com",
            "password1": "correct-horse-battery-9",
            "password2": "correct-horse-battery-9",
        },
        **extra,
    )


def test_thirty_sign_ups_from_one_client_create_the_limit_only(client, settings):
    limit = int(settings.SIGNUP_RATE_LIMIT.split("/")[0])
    answers = []
    for n in range(30):
        client.logout()
        answers.append(sign_up(client, n).status_code)
    assert answers == [302] * limit + [429] * (30 - limit)
    assert User.objects.filter(username__startswith="bot").count() == limit
    assert Notification.objects.filter(kind=Notification.Kind.WELCOME).count() == limit


def test_behind_the_ingress_each_client_has_its_own_count(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    limit = int(settings.SIGNUP_RATE_LIMIT.split("/")[0])
    for n in range(limit):
        client.logout()
        # A client may send any X-Forwarded-For; the ingress appends the real address.
        sign_up(client, n, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.5")
    client.logout()
    refused = sign_up(client, 100, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert refused.status_code == 429
    assert sign_up(client, 101, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 302


def test_while_redis_is_down_sign_up_and_reset_are_refused_and_sign_in_works(
    client, user, settings
):
    closed = free_port()  # nothing listens there: connection refused, as when Redis is down
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {**settings.CACHES["ratelimit"], "LOCATION": f"redis://127.0.0.1:{closed}/0"},
    }
    assert sign_up(client, 1).status_code == 429
    assert not User.objects.filter(username="bot1").exists()
    assert client.post(RESET, {"email": user.email}).status_code == 429
    assert log_in(client, "alice", PASSWORD).status_code == 302  # axes counts in PostgreSQL


@pytest.mark.parametrize(
    ("proxies", "meta", "expected"),
    [
        (0, {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}, "10.0.0.5"),
        (1, {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}, "203.0.113.7"),
        (
            1,
            {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"},
            "203.0.113.7",
        ),
        (
            2,
            {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7, 10.1.1.1"},
            "203.0.113.7",
        ),
        (1, {"REMOTE_ADDR": "10.0.0.5"}, "10.0.0.5"),  # did not come through the ingress
        (1, {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "not-an-address"}, "10.0.0.5"),
        (1, {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "2001:db8::1"}, "2001:db8::1"),
    ],
)
def test_the_client_address(settings, proxies, meta, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/")
    request.META = meta
    assert client_ip(request) == expected
