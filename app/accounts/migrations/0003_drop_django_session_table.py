# Sessions live in accounts_session (0002). django.contrib.sessions is no longer installed,
# so nothing reads or expires Django's own django_session table, created by that app on
# databases older than this change: it is dropped, and the app's migration records with
# it, so that installing the app again would create its table anew. Reversing this
# migration restores nothing (the sessions in it were never read after 0002).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_session'),
    ]

    operations = [
        migrations.RunSQL(
            [
                "DROP TABLE IF EXISTS django_session",
                "DELETE FROM django_migrations WHERE app = 'sessions'",
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
