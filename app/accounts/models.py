import zoneinfo
from functools import cache

from django.contrib.auth.models import AbstractUser
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class User(AbstractUser):
    """The account, with its profile fields on the same row (no extra query per request)."""

    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(max_length=100, blank=True)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="Due dates and reminders are shown in this zone.",
    )
    email_reminders = models.BooleanField(
        "email me reminders",
        default=False,
        help_text="Reminders always appear in the app; tick this to get an email too.",
    )

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def name(self) -> str:
        return self.display_name or self.username


class Session(AbstractBaseSession):
    """A browser's session: Django's three columns, and the signed-in user's id in a column
    of its own (accounts/sessions.py fills it in on every save), so that deleting a user
    deletes their sessions and the admin can end them (an action of the users list).
    """

    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="sessions"
    )

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore
