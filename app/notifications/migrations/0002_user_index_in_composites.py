"""The user's own index goes: the notification's composite indexes lead with the user.

Only the index is dropped. AlterField would drop and re-add the foreign key too, which
re-checks every row under a lock that blocks writes."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="notification",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "notifications_notification_user_id_b5e8c0ff"',
                    reverse_sql='CREATE INDEX "notifications_notification_user_id_b5e8c0ff" ON "notifications_notification" ("user_id")',
                ),
            ],
        ),
    ]
