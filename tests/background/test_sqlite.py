"""The reminder scan and email claim on SQLite, the database of `invoke dev`.

Their SQL differs per engine in a few words (row locks, how a list of ids travels, what
RETURNING may read); the suite's database is PostgreSQL, so this runs them in a child
process on a fresh SQLite file with the local settings.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.processes import APP_DIR, app_env

SCRIPT = """
import json
from datetime import timedelta

import django

django.setup()
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from notifications import services
from notifications.models import Notification
from notifications.tasks import deliver_emails
from todos.models import Todo

call_command("migrate", verbosity=0)
now = timezone.now().replace(second=0, microsecond=0)
tokyo = User.objects.create_user("tokyo", email="t@example.com", time_zone="Asia/Tokyo",
                                 email_reminders=True)
nowhere = User.objects.create_user("nowhere", email="n@example.com")
User.objects.filter(pk=nowhere.pk).update(time_zone="Nowhere/Atlantis")
due = Todo.objects.create(user=tokyo, title="due", remind_at=now - timedelta(minutes=1),
                          due_at=now.replace(hour=12, minute=0) + timedelta(days=1))
undated = Todo.objects.create(user=tokyo, title="undated", remind_at=now - timedelta(minutes=2))
later = Todo.objects.create(user=tokyo, title="later", remind_at=now + timedelta(hours=1))
bad = Todo.objects.create(user=nowhere, title="bad", remind_at=now, due_at=now)

first = services.claim_reminder_batch(timezone.now(), 10)
second = services.claim_reminder_batch(timezone.now(), 10, skip=first.failed)
print(json.dumps({
    "first": first._asdict(), "second": second._asdict(),
    "ids": {"due": due.pk, "undated": undated.pk, "later": later.pk, "bad": bad.pk},
    "bodies": dict(Notification.objects.values_list("todo__title", "body")),
    "still_due": sorted(Todo.objects.filter(reminded_at__isnull=True).values_list("pk", flat=True)),
    "sent": deliver_emails.apply(args=[first.to_email]).get(),
    "again": deliver_emails.apply(args=[first.to_email]).get(),
}))
"""


def test_the_scan_and_the_email_claim_run_on_sqlite(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=APP_DIR,
        env=app_env(
            DJANGO_SETTINGS_MODULE="config.settings.local",
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            REDIS_URL="redis://127.0.0.1:1/0",  # set, so no local broker folder is made
            EMAIL_URL="dummymail://",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout.splitlines()[-1])
    ids = result["ids"]
    # The bad row (a zone Python does not know) is left due; the others are reminded once.
    assert result["first"]["claimed"] == 3 and result["first"]["failed"] == [ids["bad"]]
    assert len(result["first"]["to_email"]) == 2
    assert result["second"] == {"claimed": 0, "to_email": [], "failed": []}
    assert result["still_due"] == sorted([ids["later"], ids["bad"]])
    assert result["bodies"]["due"].endswith(", 21:00 JST.")  # 12:00 UTC in Tokyo
    assert result["bodies"]["undated"] == "You asked to be reminded about this todo."
    assert result["sent"]["sent"] == 2 and result["again"]["already handled"] == 2
