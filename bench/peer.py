"""The peer of issue 22, HasanIstanbouli/Todo-List-Django, run beside the app in one run.

`invoke bench.web --peer PATH` takes a checkout of it (never committed here) with its own
virtualenv in PATH/.venv (`python -m venv PATH/.venv && PATH/.venv/bin/pip install -r
PATH/requirements.txt`), and sets it up as its README and entrypoint.sh do: its
settings read from the environment (.env.example names them), PostgreSQL and Redis,
`migrate`, `collectstatic`, then `gunicorn Todo_List.wsgi:application -c
gunicorn.conf.py -w 4` (its config adds 3 threads a worker). One user with 50 tasks
spread like ours (open and done, due dates from three weeks ago to six weeks ahead) is
created through its own models, and the harness measures its sign-in page anonymous and
its task list signed in.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bench import HarnessError, wrk
from bench.client import Session
from bench.processes import AppProcess

if TYPE_CHECKING:
    from bench.harness import Services

LOGIN, LIST = "/signin/", "/tasks/running/"


class PeerError(HarnessError):
    pass


USERNAME, PASSWORD = "peer1", "bench-passw0rd"
DATABASE_SUFFIX = "_peer"

# Its models, as its own views create them: one user and 50 tasks.
SEED = f"""
import random
from datetime import timedelta
from django.utils import timezone
from Todo_List_App.models import CustomUser, Task
user = CustomUser.objects.create_user(
    username={USERNAME!r}, email="peer1@example.com", password={PASSWORD!r}
)
rng, now = random.Random(1), timezone.now()
for number in range(50):
    due = now + timedelta(hours=rng.randint(-21 * 24, 42 * 24))
    done = due < now and rng.random() < 0.8 or rng.random() < 0.1
    Task.objects.create(
        user=user, taskTitle=f"Task {{number}}", description="Bring the receipt.",
        dueDate=due, important=rng.choice(["High", "Medium", "Low"]),
        completedDate=due if done else None, status="Completed" if done else "Pending",
    )
"""


def python(peer_dir: Path) -> Path:
    interpreter = peer_dir / ".venv" / "bin" / "python"
    if not interpreter.exists():
        raise PeerError(
            f"{interpreter} is missing: python -m venv {peer_dir}/.venv && "
            f"{peer_dir}/.venv/bin/pip install -r {peer_dir}/requirements.txt"
        )
    return interpreter


def environment(services: Services, port: int = 0) -> dict[str, str]:
    """Its settings (Todo_List/settings.py reads these), production-like: DEBUG off."""
    database = urlsplit(services.maintenance_url)
    redis = urlsplit(services.redis_url)
    return {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # It encrypts row ids with this key when it creates them: the same for every step.
        "FERNET_KEY": "hsHo0mJEtgrh4bkdDpnTkKj5QCH5zJnO8BzgrZzZpeM=",
        "IS_DEBUG": "False",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": "http://127.0.0.1",
        "TIME_ZONE": "UTC",
        "TODO_BACKEND_PORT": str(port),
        "DB_ENGINE": "django.db.backends.postgresql",
        "DB_HOST": database.hostname or "127.0.0.1",
        "DB_PORT": str(database.port or 5432),
        "DB_NAME": services.database_name + DATABASE_SUFFIX,
        "DB_USER": database.username or "postgres",
        "DB_PASSWORD": database.password or "",
        "DB_SSL_MODE": "prefer",
        "REDIS_HOST": redis.hostname or "127.0.0.1",
        # Its cache is index 0 (the pages measured never use it), its broker index 1.
        "REDIS_PORT": str(redis.port or 6379),
        "REDIS_USERNAME": "",
        "REDIS_PASSWORD": "",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": "25",
        "EMAIL_HOST_USER": "peer@example.com",
        "CELERY_TIMEZONE": "UTC",
    }


def prepare(peer_dir: Path, services: Services, say) -> None:
    say(f"Preparing the peer's database {services.database_name + DATABASE_SUFFIX}...")
    services.reset_database(services.database_name + DATABASE_SUFFIX)
    env = environment(services)
    for args in (("migrate", "--noinput"), ("collectstatic", "--noinput"), ("shell", "-c", SEED)):
        finished = subprocess.run(  # noqa: S603 (the peer's manage.py, no shell)
            [str(python(peer_dir)), "manage.py", *args],
            cwd=peer_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if finished.returncode != 0:
            raise PeerError(
                f"the peer's manage.py {args[0]} failed:\n{finished.stdout}{finished.stderr}"
            )


def server(peer_dir: Path, services: Services, port: int, log_path: Path) -> AppProcess:
    gunicorn = str(python(peer_dir).with_name("gunicorn"))
    argv = [gunicorn, "Todo_List.wsgi:application", "-c", "gunicorn.conf.py", "-w", "4"]
    return AppProcess("peer", environment(services, port), log_path, argv=argv, cwd=peer_dir)


def requests(base_url: str) -> list[tuple[str, str, wrk.Request]]:
    """(name, label, request) of the peer's endpoints, its user signed in for the list."""
    user = Session(base_url)
    user.login(USERNAME, PASSWORD, path=LOGIN)
    return [
        ("peer-login", "peer: sign-in page, anonymous", wrk.Request("GET", (LOGIN,))),
        (
            "peer-list",
            "peer: task list, 50 tasks (signed in)",
            wrk.Request("GET", (LIST,), headers=user.headers()),
        ),
    ]
