"""List filters and sorting from query parameters: allow-lists only, bad values ignored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from todos.models import Todo, overdue

PRIORITIES = {"low": Todo.Priority.LOW, "normal": Todo.Priority.NORMAL, "high": Todo.Priority.HIGH}
STATUSES = ("open", "done")
DUE_WINDOWS = ("today", "week", "overdue")
SEARCH_MAX_LENGTH = 200
SORTS = {
    "created": ("-created_at",),
    "-created": ("created_at",),
    "due": (F("due_at").asc(nulls_last=True), "-created_at"),
    "-due": (F("due_at").desc(nulls_last=True), "-created_at"),
    "priority": ("-priority", F("due_at").asc(nulls_last=True)),
    "-priority": ("priority", F("due_at").asc(nulls_last=True)),
}
SORT_LABELS = {
    "created": "Newest first",
    "-created": "Oldest first",
    "due": "Due soonest",
    "-due": "Due latest",
    "priority": "Highest priority",
    "-priority": "Lowest priority",
}
DEFAULT_SORT = "created"


@dataclass
class TodoFilter:
    status: str = ""
    category: str = ""  # a category id, "none" (uncategorised) or "" (any)
    priority: str = ""
    due: str = ""
    q: str = ""
    sort: str = DEFAULT_SORT
    category_ids: set[int] = field(default_factory=set, repr=False)

    @classmethod
    def from_query(cls, params, category_ids: set[int]) -> TodoFilter:
        """Keep each parameter only if it is one of the allowed values."""
        category = params.get("category", "")
        if category != "none":
            category = category if category.isdigit() and int(category) in category_ids else ""
        return cls(
            status=_allowed(params.get("status"), STATUSES),
            category=category,
            priority=_allowed(params.get("priority"), PRIORITIES),
            due=_allowed(params.get("due"), DUE_WINDOWS),
            q=params.get("q", "").strip()[:SEARCH_MAX_LENGTH],
            sort=_allowed(params.get("sort"), SORTS) or DEFAULT_SORT,
            category_ids=category_ids,
        )

    @property
    def is_active(self) -> bool:
        return any((self.status, self.category, self.priority, self.due, self.q))

    def apply(self, todos: QuerySet[Todo]) -> QuerySet[Todo]:
        return todos.filter(self.condition()).order_by(*SORTS[self.sort])

    def condition(self) -> Q:
        """The filters as one condition: a WHERE for the list, a FILTER for its counts."""
        condition = Q()
        if self.status:
            condition &= Q(status=self.status)
        if self.category == "none":
            condition &= Q(category__isnull=True)
        elif self.category:
            condition &= Q(category_id=int(self.category))
        if self.priority:
            condition &= Q(priority=PRIORITIES[self.priority])
        if self.due:
            condition &= self._due_condition()
        if self.q:
            condition &= Q(title__icontains=self.q) | Q(notes__icontains=self.q)
        return condition

    def _due_condition(self) -> Q:
        now = timezone.now()
        if self.due == "overdue":
            return overdue(now)
        # Days are the user's days: "today" ends at midnight in their time zone.
        start_of_today = start_of_day(timezone.localdate(now))
        days = 1 if self.due == "today" else 7
        return Q(due_at__gte=start_of_today, due_at__lt=start_of_today + timedelta(days))

    def querystring(self, **overrides) -> str:
        """The filter as URL parameters (for pagination and export links)."""
        values = {
            "status": self.status,
            "category": self.category,
            "priority": self.priority,
            "due": self.due,
            "q": self.q,
            "sort": self.sort if self.sort != DEFAULT_SORT else "",
        }
        values.update(overrides)
        return urlencode({key: value for key, value in values.items() if value})


def start_of_day(day: date) -> datetime:
    """Midnight at the start of `day` in the active (the user's) time zone."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _allowed(value: str | None, allowed) -> str:
    return value if value in allowed else ""
