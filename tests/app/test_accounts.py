import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from accounts.models import User
from accounts.tasks import send_password_reset_email
from notifications.models import Notification

pytestmark = pytest.mark.django_db

SIGNUP = reverse("accounts:signup")
LOGIN = reverse("login")


def signup(client, **overrides):
    data = {
        "username": "carol",
        "email": "carol@example.com",
        "password1": "correct-horse-battery-9",
        "password2": "correct-horse-battery-9",
        **overrides,
    }
    return client.post(SIGNUP, data)


def test_signup_logs_in_and_queues_a_welcome_email(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = signup(client)
    assert response.status_code == 302 and response.url == reverse("todos:list")
    user = User.objects.get(username="carol")
    assert client.get(reverse("todos:list")).context["user"] == user
    welcome = Notification.objects.get(user=user, kind=Notification.Kind.WELCOME)
    assert welcome.email_status == Notification.EmailStatus.PENDING
    assert welcome.is_read  # a new account shows no unread notification it did not cause
    # The email is enqueued only once the signup is committed (the other callbacks drop
    # cached copies again at commit: core/cached.py).
    queued = [
        callback for callback in callbacks if getattr(callback, "func", None) != cache.delete_many
    ]
    assert len(queued) == 1


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"password1": "short", "password2": "short"}, "too short"),
        ({"password1": "password123", "password2": "password123"}, "too common"),
        ({"password1": "83749201938", "password2": "83749201938"}, "entirely numeric"),
        ({"password2": "something-else-1"}, "didn’t match"),
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"email": ""}, "This field is required."),
        ({"username": "x" * 151}, "at most 150 characters"),
        ({"username": "bad name!"}, "Enter a valid username."),
    ],
)
def test_signup_rejects_bad_input(client, overrides, error):
    response = signup(client, **overrides)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not User.objects.exists()


def test_signup_refuses_a_taken_email(client, make_user):
    make_user("dave", email="carol@example.com")
    response = signup(client, email="CAROL@example.com")
    assert "already exists" in response.content.decode()


def test_login_and_logout(client, make_user):
    make_user("erin", password="a-Str0ng-passphrase")
    response = client.post(LOGIN, {"username": "erin", "password": "a-Str0ng-passphrase"})
    assert response.status_code == 302 and response.url == reverse("todos:list")
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("todos:list")).status_code == 302


def test_wrong_password_is_refused(client, make_user):
    make_user("erin")
    response = client.post(LOGIN, {"username": "erin", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/path", "/\\evil.example", "http:///evil.example"],
)
def test_login_never_redirects_off_site(client, make_user, next_url):
    make_user("frank", password="a-Str0ng-passphrase")
    response = client.post(
        f"{LOGIN}?next={next_url}",
        {"username": "frank", "password": "a-Str0ng-passphrase", "next": next_url},
    )
    assert response.status_code == 302
    assert response.url == reverse("todos:list")


def test_login_follows_next_on_this_site(client, make_user):
    make_user("gina", password="a-Str0ng-passphrase")
    response = client.post(
        LOGIN, {"username": "gina", "password": "a-Str0ng-passphrase", "next": "/categories/"}
    )
    assert response.url == "/categories/"


def test_password_change(user_client, user):
    response = user_client.post(
        reverse("password_change"),
        {
            "old_password": "a-Str0ng-passphrase",
            "new_password1": "n3w-Passphrase-x",
            "new_password2": "n3w-Passphrase-x",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("n3w-Passphrase-x")


def request_reset(client, email, callbacks_fixture):
    """POST the reset form; return the response and the after-commit callbacks it queued."""
    with callbacks_fixture(execute=False) as callbacks:
        response = client.post(reverse("password_reset"), {"email": email})
    return response, callbacks


def test_password_reset_by_email(client, user, django_capture_on_commit_callbacks, settings):
    settings.SITE_URL = "https://todo.example.com:8443"
    response, callbacks = request_reset(client, user.email, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    # The request sent nothing: the email is a task, queued after commit.
    assert len(mail.outbox) == 0 and len(callbacks) == 1
    send_password_reset_email.apply(args=[user.email])
    assert len(mail.outbox) == 1
    link = re.search(
        r"https://todo\.example\.com:8443(/accounts/reset/\S+/)", mail.outbox[0].body
    ).group(1)
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "r3set-Passphrase", "new_password2": "r3set-Passphrase"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("r3set-Passphrase")


def test_the_reset_link_ignores_the_host_header(client, user, settings):
    client.post(reverse("password_reset"), {"email": user.email}, HTTP_HOST="localhost:6666")
    send_password_reset_email.apply(args=[user.email])
    assert "localhost:6666" not in mail.outbox[0].body
    assert f"{settings.SITE_URL}/accounts/reset/" in mail.outbox[0].body


def test_password_reset_does_not_reveal_accounts(client, user, django_capture_on_commit_callbacks):
    """A known and an unknown address: the same answer, the same work (one task queued)."""
    known, known_callbacks = request_reset(client, user.email, django_capture_on_commit_callbacks)
    unknown, unknown_callbacks = request_reset(
        client, "nobody@example.com", django_capture_on_commit_callbacks
    )
    assert (known.status_code, known.url) == (unknown.status_code, unknown.url) == (302, known.url)
    assert len(known_callbacks) == len(unknown_callbacks) == 1
    assert len(mail.outbox) == 0
    send_password_reset_email.apply(args=["nobody@example.com"])
    assert len(mail.outbox) == 0


def test_profile_saves_time_zone_and_reminder_opt_in(user_client, user):
    response = user_client.post(
        reverse("accounts:profile"),
        {
            "display_name": "Alice A.",
            "email": user.email,
            "time_zone": "Europe/Berlin",
            "email_reminders": "on",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.display_name, user.time_zone, user.email_reminders) == (
        "Alice A.",
        "Europe/Berlin",
        True,
    )
    assert "Alice A." in user_client.get(reverse("todos:list")).content.decode()


def test_profile_rejects_an_unknown_time_zone(user_client, user):
    response = user_client.post(
        reverse("accounts:profile"), {"email": user.email, "time_zone": "Mars/Olympus_Mons"}
    )
    assert response.status_code == 400  # like every other form that refuses its input
    assert "Select a valid choice." in response.content.decode()


def test_the_cached_empty_sign_in_form_never_hides_a_failed_attempt(client, make_user):
    make_user("carol")
    empty = client.get(reverse("login")).content.decode()
    assert 'name="username"' in empty and 'value="carol"' not in empty
    failed = client.post(reverse("login"), {"username": "carol", "password": "wrong"})
    page = failed.content.decode()
    assert 'value="carol"' in page and "field-error" not in empty
    assert "Please enter a correct" in page
    assert client.get(reverse("login")).content.decode().count('value="carol"') == 0
