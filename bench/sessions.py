"""The mix's signed-in users, made inside Django (bench/harness.py starts it).

    python -m bench.sessions PREFIX FILE

Signs every seeded user PREFIX1.. in through Django's documented test client
(`Client.force_login`: the configured session engine, `django.contrib.auth.login`), so
that 200 users need no 200 password hashes, and writes FILE for bench/mix.lua, one user a
line: session key, CSRF secret, and the ids of the user's todos (comma-separated). Prints
one BENCH_RESULT line with the number of users. Run with app/ on PYTHONPATH and
DJANGO_SETTINGS_MODULE set, like bench/reminders.py.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from bench import RESULT_MARKER


def sign_in(prefix: str, path: Path) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.middleware.csrf import CSRF_SECRET_LENGTH
    from django.test import Client
    from django.utils.crypto import get_random_string

    from todos.models import Todo

    users = get_user_model().objects.filter(username__regex=rf"^{re.escape(prefix)}[0-9]+$")
    lines = []
    for user in users.order_by("pk"):
        client = Client()
        client.force_login(user)
        todo_ids = Todo.objects.filter(user=user).values_list("pk", flat=True)
        # A CSRF cookie holds a secret; Django accepts the secret itself as the token too.
        secret = get_random_string(CSRF_SECRET_LENGTH)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        lines.append(f"{session} {secret} {','.join(str(pk) for pk in todo_ids)}")
    if not lines:
        raise SystemExit(f"no seeded users {prefix}1.. to sign in")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return {"users": len(lines)}


def main(argv: list[str]) -> int:
    import django

    if len(argv) != 2:
        print("usage: python -m bench.sessions PREFIX FILE", file=sys.stderr)
        return 2
    django.setup()
    print(RESULT_MARKER + json.dumps(sign_in(argv[0], Path(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
