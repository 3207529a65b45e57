from django.conf import settings
from django.core.cache import cache
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver

from core.cached import TIMEOUT, forget


class Notification(models.Model):
    class Kind(models.TextChoices):
        REMINDER = "reminder", "Reminder"
        WELCOME = "welcome", "Welcome"

    class EmailStatus(models.TextChoices):
        NONE = "none", "Not emailed"
        PENDING = "pending", "Email queued"
        SENDING = "sending", "Email sending"
        SENT = "sent", "Emailed"
        FAILED = "failed", "Email failed"

    # No index of its own: both indexes below lead with the user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    todo = models.ForeignKey(
        "todos.Todo", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind)
    # The reminder time this notification answers: with the unique constraint below, a
    # second scan (or a redelivered task) cannot remind twice for the same time.
    scheduled_for = models.DateTimeField(null=True, blank=True)
    title = models.CharField(max_length=250)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    email_status = models.CharField(max_length=8, choices=EmailStatus, default=EmailStatus.NONE)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    # While SENDING: until when the current attempt owns the send (see tasks.deliver_email).
    email_lease_until = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=250, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_recent"),
            models.Index(
                fields=["user"], name="notification_user_unread", condition=Q(read_at__isnull=True)
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["todo", "scheduled_for"],
                condition=Q(kind="reminder"),
                name="one_reminder_per_todo_and_time",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


def unread_cache_key(user_id) -> str:
    return f"unread-notifications:{user_id}"


def unread_count(user) -> int:
    """The header's unread badge, on every signed-in page: read from the default cache
    (Redis). Every write that can change it drops it: a save (below), marking all read
    and the reminder scan's INSERT (forget_unread_counts); anything else, such as the
    admin's bulk delete, shows within core.cached.TIMEOUT."""
    return cache.get_or_set(
        unread_cache_key(user.pk),
        lambda: user.notifications.filter(read_at=None).count(),
        TIMEOUT,
    )


def forget_unread_counts(user_ids) -> None:
    forget([unread_cache_key(user_id) for user_id in set(user_ids)])


@receiver(post_save, sender=Notification, dispatch_uid="forget-unread-count-on-save")
def _forget_unread_count(sender, instance, **kwargs) -> None:
    forget_unread_counts([instance.user_id])
