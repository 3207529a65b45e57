from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from core.cached import TIMEOUT, forget

# The times a todo may be due or remind at. A stored instant is shown in the user's zone,
# up to 16 hours either side of UTC, and Python's datetime ends at years 1 and 9999
# (PostgreSQL's timestamptz goes further, so it would store what Python cannot read back).
# From 1900 to the end of 9998, a time is representable in every zone, and so is a
# reminder up to MAX_REMIND_BEFORE before it. Checked by the fields' validators (forms,
# admin, full_clean) and by the table's check constraints (anything else that writes);
# TodoForm checks that a reminder's offset keeps it in range.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive
MAX_REMIND_BEFORE = timedelta(days=365)
TIME_RANGE_MESSAGE = "Choose a time from 1900 to 9998."


def is_todo_time(value: datetime) -> bool:
    return EARLIEST_TIME <= value < LATEST_TIME


def validate_todo_time(value: datetime) -> None:
    if not is_todo_time(value):
        raise ValidationError(TIME_RANGE_MESSAGE, code="out_of_range")


def validate_remind_before(value: timedelta) -> None:
    if not timedelta(0) <= value <= MAX_REMIND_BEFORE:
        raise ValidationError(
            "A reminder is at most a year before the due time, never after it.",
            code="out_of_range",
        )


def _in_range(field: str, low, high, high_inclusive: bool = False) -> models.Q:
    upper = {f"{field}__lte" if high_inclusive else f"{field}__lt": high}
    return models.Q(**{f"{field}__isnull": True}) | models.Q(**{f"{field}__gte": low}, **upper)


class Category(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="categories"
    )
    name = models.CharField(max_length=50)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "categories"
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint("user", Lower("name"), name="category_name_unique_per_user_ci")
        ]

    def __str__(self) -> str:
        return self.name


def categories_cache_key(user_id) -> str:
    return f"categories:{user_id}"


def categories_of(user) -> list[Category]:
    """The user's categories, in order, for every list page: read from the default cache
    (Redis), dropped there whenever one of them is saved or deleted (below). A Redis that
    is down reads as a miss: they come from the database."""
    return cache.get_or_set(
        categories_cache_key(user.pk), lambda: list(user.categories.all()), TIMEOUT
    )


@receiver(post_save, sender=Category, dispatch_uid="forget-cached-categories-on-save")
@receiver(post_delete, sender=Category, dispatch_uid="forget-cached-categories-on-delete")
def _forget_cached_categories(sender, instance, **kwargs) -> None:
    forget([categories_cache_key(instance.user_id)])


def overdue(now=None) -> Q:
    """Overdue is derived, never stored: open and past its due time."""
    return Q(status="open", due_at__lt=now or timezone.now())


class TodoQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user)

    def overdue(self, now=None):
        """Open todos whose due time has passed (the index on user, status, due_at serves it)."""
        return self.filter(overdue(now))


class Todo(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    class Priority(models.IntegerChoices):
        LOW = 1, "Low"
        NORMAL = 2, "Normal"
        HIGH = 3, "High"

    TITLE_MAX_LENGTH = 200
    NOTES_MAX_LENGTH = 5000

    # No index of its own: the two indexes below lead with the user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="todos", db_index=False
    )
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    notes = models.TextField(max_length=NOTES_MAX_LENGTH, blank=True)
    due_at = models.DateTimeField("due", null=True, blank=True, validators=[validate_todo_time])
    # Either a fixed time, or an offset before the due time (kept so that moving the
    # due date moves the reminder with it).
    remind_at = models.DateTimeField(
        "remind at", null=True, blank=True, validators=[validate_todo_time]
    )
    remind_before = models.DurationField(null=True, blank=True, validators=[validate_remind_before])
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    priority = models.PositiveSmallIntegerField(choices=Priority, default=Priority.NORMAL)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="todos"
    )
    status = models.CharField(max_length=4, choices=Status, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TodoQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "status", "due_at"], name="todo_user_status_due"),
            models.Index(fields=["user", "-created_at"], name="todo_user_created"),
            # The reminder scan reads only todos still waiting for their reminder.
            models.Index(
                fields=["remind_at"],
                name="todo_reminder_pending",
                condition=Q(status="open", reminded_at__isnull=True, remind_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=_in_range("due_at", EARLIEST_TIME, LATEST_TIME),
                name="todo_due_at_in_range",
                violation_error_message=TIME_RANGE_MESSAGE,
            ),
            models.CheckConstraint(
                condition=_in_range("remind_at", EARLIEST_TIME, LATEST_TIME),
                name="todo_remind_at_in_range",
                violation_error_message=TIME_RANGE_MESSAGE,
            ),
            models.CheckConstraint(
                condition=_in_range(
                    "remind_before", timedelta(0), MAX_REMIND_BEFORE, high_inclusive=True
                ),
                name="todo_remind_before_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_done(self) -> bool:
        return self.status == self.Status.DONE

    @property
    def shows_overdue(self) -> bool:
        """Overdue is derived, never stored: open and past its due time, right now."""
        return not self.is_done and self.due_at is not None and self.due_at < timezone.now()

    def set_schedule(self, due_at, remind_at=None, remind_before: timedelta | None = None):
        """Set due and reminder times; a reminder moved into the future will fire again."""
        self.due_at = due_at
        self.remind_before = remind_before
        if remind_before is not None and due_at is not None:
            remind_at = due_at - remind_before
        if remind_at != self.remind_at:
            self.reminded_at = None
        self.remind_at = remind_at

    def mark_done(self):
        self.status = self.Status.DONE
        self.completed_at = timezone.now()

    def reopen(self):
        self.status = self.Status.OPEN
        self.completed_at = None
