from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm

from accounts.sessions import SessionStore


@shared_task
def delete_expired_sessions() -> None:
    """Daily housekeeping: an expired session is never read again."""
    SessionStore.clear_expired()


@shared_task
def send_password_reset_email(email: str) -> None:
    """Email a reset link to the active accounts of `email` (none: nothing is sent).

    Django's own form does the work; the link's scheme and host come from DJANGO_SITE_URL.
    A failed send is logged by Django ("Failed to send password reset email") and not
    retried: the user asks again.
    """
    form = PasswordResetForm({"email": email})
    if form.is_valid():
        site = urlsplit(settings.SITE_URL)
        form.save(domain_override=site.netloc, use_https=site.scheme == "https")
