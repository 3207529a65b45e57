from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


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

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="todos"
    )
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    notes = models.TextField(max_length=NOTES_MAX_LENGTH, blank=True)
    due_at = models.DateTimeField("due", null=True, blank=True)
    # Either a fixed time, or an offset before the due time (kept so that moving the
    # due date moves the reminder with it).
    remind_at = models.DateTimeField("remind at", null=True, blank=True)
    remind_before = models.DurationField(null=True, blank=True)
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
