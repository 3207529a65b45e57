"""The user's own index goes: the todo's composite indexes lead with the user.

Only the index is dropped. AlterField would drop and re-add the foreign key too, which
re-checks every row under a lock that blocks writes."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("todos", "0003_todo_times_in_range"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="todo",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="todos",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "todos_todo_user_id_cbda3499"',
                    reverse_sql='CREATE INDEX "todos_todo_user_id_cbda3499" ON "todos_todo" ("user_id")',
                ),
            ],
        ),
    ]
