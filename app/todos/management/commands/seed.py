"""`manage.py seed`: reproducible demo and benchmark data.

N users with M todos each, spread the way a lived-in list is: a mix of open and done,
mostly normal priority, most todos in one of the user's categories, due dates from three
weeks ago to six weeks ahead (past ones mostly done, the open ones marked overdue as the
periodic job would), some reminders, already sent where their time has passed, with
their notifications. Each user's data comes from a generator seeded with `--seed` and
the username, so the same arguments (and `--now`) always give the same rows.

It creates users with a known password, so it runs only with DEBUG on (local settings)
or the benchmark settings, never on a production database.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from notifications.models import Notification
from todos.models import Category, Todo

VERBS = (
    "Buy", "Call", "Email", "Fix", "Book", "Renew", "Plan", "Review", "Pay", "Clean",
    "Write", "Send", "Cancel", "Order", "Prepare", "Check", "Update", "Return", "Schedule",
)  # fmt: skip
OBJECTS = (
    "the plumber", "passport", "dentist appointment", "quarterly report", "electricity bill",
    "birthday present", "car insurance", "team offsite", "library books", "garden shed",
    "tax return", "flight to Lisbon", "gym membership", "slides for Monday", "the landlord",
    "bike tyres", "kitchen drawer", "invoice #42", "thank-you cards", "backup drive",
)  # fmt: skip
NOTE_SENTENCES = (
    "Ask about the weekend rate.",
    "Reference number is in the last email.",
    "Needs to happen before the end of the month.",
    "Check with Sam first, they know the details.",
    "Bring the receipt and the warranty card.",
    "Compare at least three offers; last year's was too expensive.",
    "Draft is in the shared folder.",
    "Only mornings work for them.",
)
CATEGORY_NAMES = ("Work", "Home", "Errands", "Health", "Finance", "Family", "Study", "Garden")
FIRST_NAMES = ("Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Ken", "Radia", "Guido")
TIME_ZONES = ("", "", "UTC", "Europe/London", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
REMINDER_OFFSETS = (timedelta(0), timedelta(minutes=15), timedelta(hours=1), timedelta(days=1))
PRIORITY_WEIGHTS = {Todo.Priority.LOW: 25, Todo.Priority.NORMAL: 55, Todo.Priority.HIGH: 20}

PAST_DAYS, FUTURE_DAYS = 21, 42
QUARTERS_PER_DAY = 24 * 4
INSERT_BATCH = 2000


@dataclass
class UserData:
    user: object
    categories: list[Category] = field(default_factory=list)
    todos: list[Todo] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


class Command(BaseCommand):
    help = "Create N users with M todos each: reproducible data for demos and benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=10, help="number of users (default 10)")
        parser.add_argument("--todos", type=int, default=50, help="todos per user (default 50)")
        parser.add_argument(
            "--prefix", default="user", help="usernames are PREFIX1..PREFIXN (default user)"
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument(
            "--password", default="seed-passw0rd", help="every seeded user's password"
        )
        parser.add_argument(
            "--now", help="reference time, ISO 8601 (default: now); fix it to get identical rows"
        )
        parser.add_argument(
            "--email-opt-in",
            type=float,
            default=0.2,
            help="share of users who get reminder emails (default 0.2)",
        )
        parser.add_argument(
            "--all-reminders-due",
            action="store_true",
            help="every todo open with a reminder due and not yet sent (the reminder scan's load)",
        )
        parser.add_argument(
            "--replace", action="store_true", help="delete this prefix's users first"
        )

    def handle(self, *args, **options):
        if not (settings.DEBUG or getattr(settings, "BENCHMARK", False)):
            raise CommandError(
                "seed creates users with a known password: it runs only with DEBUG on "
                "(config.settings.local) or config.settings.bench, never in production."
            )
        if options["users"] < 1 or options["todos"] < 0:
            raise CommandError("--users must be at least 1 and --todos at least 0.")
        if not 0 <= options["email_opt_in"] <= 1:
            raise CommandError("--email-opt-in is a share between 0 and 1.")
        now = _parse_now(options["now"])
        prefix = options["prefix"]
        users = get_user_model().objects.filter(username__regex=rf"^{re.escape(prefix)}[0-9]+$")

        with transaction.atomic():
            if users.exists():
                if not options["replace"]:
                    raise CommandError(
                        f"Users {prefix}1.. already exist; pass --replace to recreate them."
                    )
                users.delete()
            password = make_password(options["password"])  # hashed once: seeding stays fast
            seeded = [
                _user_data(
                    username=f"{prefix}{number}",
                    todo_count=options["todos"],
                    password=password,
                    now=now,
                    options=options,
                )
                for number in range(1, options["users"] + 1)
            ]
            counts = _insert(seeded, now)

        self.stdout.write(
            f"Seeded {len(seeded)} users ({prefix}1..{prefix}{len(seeded)}, password "
            f"{options['password']!r}) with {options['todos']} todos each: "
            f"{counts['todos']} todos, {counts['categories']} categories, "
            f"{counts['notifications']} notifications, {counts['due_reminders']} reminders due "
            f"(seed {options['seed']}, now {now.isoformat()})."
        )


def _parse_now(value: str | None) -> datetime:
    if not value:
        return timezone.now()
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"--now {value!r} is not an ISO 8601 date-time.")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, timezone.utc)


def _user_data(username: str, todo_count: int, password: str, now: datetime, options) -> UserData:
    # One generator per user: a user's rows do not depend on how many others are seeded.
    rng = random.Random(f"{options['seed']}:{username}")  # noqa: S311 (data, not secrets)
    user = get_user_model()(
        username=username,
        email=f"{username}@example.com",
        password=password,
        display_name=rng.choice(FIRST_NAMES) if rng.random() < 0.6 else "",
        time_zone=rng.choice(TIME_ZONES),
        email_reminders=rng.random() < options["email_opt_in"],
    )
    names = rng.sample(CATEGORY_NAMES, rng.randint(2, 6))
    data = UserData(user=user, categories=[Category(user=user, name=name) for name in names])
    # Due dates fall on quarter hours, counted from the quarter hour before `now`.
    anchor = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    make = _due_reminder_todo if options["all_reminders_due"] else _lived_in_todo
    data.todos = [make(rng, user, data.categories, now, anchor) for _ in range(todo_count)]
    data.notifications = [_sent_reminder(rng, todo) for todo in data.todos if todo.reminded_at]
    return data


def _common_fields(rng: random.Random, user, categories) -> dict:
    notes = ""
    if rng.random() < 0.3:
        notes = " ".join(rng.sample(NOTE_SENTENCES, rng.randint(1, 3)))
    return {
        "user": user,
        "title": f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}",
        "notes": notes,
        "priority": rng.choices(list(PRIORITY_WEIGHTS), weights=PRIORITY_WEIGHTS.values())[0],
        "category": rng.choice(categories) if rng.random() < 0.75 else None,
    }


def _lived_in_todo(rng, user, categories, now, anchor) -> Todo:
    todo = Todo(**_common_fields(rng, user, categories))
    due_at = None
    if rng.random() >= 0.35:
        quarters = rng.randint(-PAST_DAYS * QUARTERS_PER_DAY, FUTURE_DAYS * QUARTERS_PER_DAY)
        due_at = anchor + timedelta(minutes=15 * quarters)
    remind_before = None
    if due_at is not None and rng.random() < 0.3:
        remind_before = rng.choice(REMINDER_OFFSETS)
    todo.set_schedule(due_at, remind_before=remind_before)
    # Work that was due is mostly done; work still ahead mostly open.
    done_share = 0.3 if due_at is None else 0.7 if due_at < now else 0.1
    if rng.random() < done_share:
        todo.status = Todo.Status.DONE
        todo.completed_at = min(now, due_at or now) - timedelta(minutes=rng.randint(1, 3000))
    if todo.remind_at is not None and todo.remind_at <= now:
        todo.reminded_at = todo.remind_at  # the scan sent it when it came due
    return todo


def _due_reminder_todo(rng, user, categories, now, anchor) -> Todo:
    todo = Todo(**_common_fields(rng, user, categories))
    remind_at = anchor - timedelta(minutes=rng.randint(1, 2 * 24 * 60))
    remind_before = rng.choice(REMINDER_OFFSETS)
    todo.set_schedule(remind_at + remind_before, remind_before=remind_before)
    return todo


def _insert(seeded: list[UserData], now: datetime) -> dict[str, int]:
    """Bulk inserts, parents first: each child's foreign key is filled from its saved parent."""
    get_user_model().objects.bulk_create([data.user for data in seeded])
    categories = [category for data in seeded for category in data.categories]
    Category.objects.bulk_create(categories, batch_size=INSERT_BATCH)
    todos = [todo for data in seeded for todo in data.todos]
    Todo.objects.bulk_create(todos, batch_size=INSERT_BATCH)
    notifications = [notification for data in seeded for notification in data.notifications]
    Notification.objects.bulk_create(notifications, batch_size=INSERT_BATCH)
    due = [todo for todo in todos if todo.remind_at and not todo.reminded_at]
    return {
        "todos": len(todos),
        "categories": len(categories),
        "notifications": len(notifications),
        "due_reminders": sum(1 for todo in due if todo.remind_at <= now),
    }


def _sent_reminder(rng: random.Random, todo: Todo) -> Notification:
    """The in-app reminder the scan created for a todo reminded in the past, mostly read."""
    read_at = todo.reminded_at + timedelta(minutes=rng.randint(1, 600))
    email = Notification.EmailStatus.SENT if todo.user.email_reminders else None
    return Notification(
        user=todo.user,
        todo=todo,
        kind=Notification.Kind.REMINDER,
        scheduled_for=todo.remind_at,
        title=f"Reminder: {todo.title}",
        body="You asked to be reminded about this todo.",
        read_at=read_at if rng.random() < 0.8 else None,
        email_status=email or Notification.EmailStatus.NONE,
    )
