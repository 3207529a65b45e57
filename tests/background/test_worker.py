"""Real workers on the real Redis broker: delivery, a killed worker, a restarted Redis."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from datetime import timedelta
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPRedirectHandler, Request, build_opener, urlopen

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from config.celery import app as celery_app
from notifications.models import Notification
from notifications.tasks import scan_reminders
from tests.processes import APP_DIR, WORKER, free_port, wait_for
from todos.models import Todo

pytestmark = pytest.mark.slow


def due_todo(user, title="Call the plumber") -> Todo:
    past = timezone.now() - timedelta(minutes=1)
    return Todo.objects.create(user=user, title=title, remind_at=past, due_at=past)


@pytest.mark.django_db(transaction=True)
def test_reminder_arrives_through_the_broker(user, process_env):
    todo = due_todo(user)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        scan_reminders.delay()
        notification = wait_for(
            lambda: Notification.objects.filter(todo=todo).first(), 20, "the reminder notification"
        )
    assert notification.title == "Reminder: Call the plumber"
    assert notification.user == user


@pytest.mark.django_db(transaction=True)
def test_the_password_reset_email_is_sent_by_the_worker(client, user, process_env):
    response = client.post(reverse("password_reset"), {"email": user.email})
    assert response.status_code == 302
    assert mail.outbox == []  # the request sent nothing: it queued the address after commit
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        wait_for(lambda: mail.outbox, 20, "the password reset email")
    [email] = mail.outbox
    assert email.to == [user.email] and "/accounts/reset/" in email.body


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_send_delivers_exactly_once(
    make_user, process_env, processes, smtp_server
):
    user = make_user("kill", email_reminders=True)
    todo = due_todo(user)
    env = {
        **process_env,
        "EMAIL_URL": smtp_server.url,
        "DJANGO_EMAIL_TIMEOUT": "2",  # lease = 3 x 2 + 5 = 11 s
        "CELERY_VISIBILITY_TIMEOUT": "3",  # an unacked task comes back after 3 s
    }
    smtp_server.stall_next(1)
    first = processes.start("worker", WORKER, env)
    scan_reminders.delay()
    assert smtp_server.data_started.wait(60), processes.log(first)
    # The email is mid-send (the SMTP server holds DATA): kill the whole worker, no warning.
    processes.stop(first, signal.SIGKILL)
    smtp_server.release()
    notification = Notification.objects.get(todo=todo)
    assert notification.email_status == Notification.EmailStatus.SENDING
    assert smtp_server.messages == []

    time.sleep(3.5)  # past the visibility timeout: the new worker restores the task
    second = processes.start("worker", WORKER, env)
    wait_for(lambda: smtp_server.messages, 60, "the email after the restart")
    time.sleep(2)  # a duplicate would arrive now
    assert len(smtp_server.messages) == 1, processes.log(second)
    assert smtp_server.messages[0]["Subject"] == "Reminder: Call the plumber"
    assert Notification.objects.filter(todo=todo).count() == 1
    notification.refresh_from_db()
    assert notification.email_status == Notification.EmailStatus.SENT


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own on a free loopback port, persisting to disk (AOF)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: uv run invoke setup")
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data),
        "--appendonly",
        "yes",
        "--save",
        "",
    ]

    class OwnRedis:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(port=port, socket_connect_timeout=1)

        def start(self):
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
            wait_for(self.ping, 10, "redis-server to start")

        def ping(self):
            try:
                return self.client.ping()
            except redis.ConnectionError:
                return False

        def stop(self):
            self.client.shutdown(save=True)  # like a restart of a persistent Valkey
            self.proc.wait(10)

    server = OwnRedis()
    server.start()
    yield server
    if server.proc.poll() is None:
        server.proc.kill()


def readiness(port: int) -> tuple[int, dict]:
    try:
        with urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status, json.load(response)
    except HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.django_db(transaction=True)
def test_redis_restart_is_survived(user, process_env, processes, own_redis):
    env = {**process_env, "REDIS_URL": own_redis.url, "WEB_CONCURRENCY": "1"}
    port = free_port()
    web = processes.start("web", [str(APP_DIR / "bin" / "web")], {**env, "PORT": str(port)})
    wait_for(lambda: _ready(port), 30, "the web process")
    assert readiness(port) == (200, {"status": "ok", "checks": {"database": "ok", "broker": "ok"}})

    # Reminders queued while no worker runs stay in Redis across its restart.
    todo = due_todo(user)
    broker = Celery(broker=own_redis.url)
    broker.send_task("notifications.tasks.scan_reminders")

    own_redis.stop()
    # Web stays in its Service (200: it serves every page); the detail names the broker.
    degraded = {"status": "degraded", "checks": {"database": "ok", "broker": "fail"}}
    assert readiness(port) == (200, degraded)

    # The site keeps taking todos while the broker is down.
    status, location = _post_as(
        user,
        port,
        "/todos/new/",
        {"form": "quick", "title": "Written during the outage", "priority": 2},
    )
    assert (status, location) == (302, "/")
    assert Todo.objects.filter(title="Written during the outage").exists()

    own_redis.start()
    wait_for(lambda: readiness(port)[1]["status"] == "ok", 20, "the broker check to recover")
    worker = processes.start("worker", WORKER, env)
    wait_for(
        lambda: Notification.objects.filter(todo=todo).exists(),
        60,
        "the queued reminder after the restart",
    )
    assert Notification.objects.filter(todo=todo).count() == 1
    assert web.poll() is None and worker.poll() is None


def _ready(port: int) -> bool:
    try:
        return readiness(port)[0] == 200
    except OSError:
        return False


def _post_as(user, port: int, path: str, data: dict) -> tuple[int, str]:
    """POST a form as a signed-in user, with the session and CSRF cookies set by hand
    (production cookies are Secure, which a plain-HTTP client would not send back)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.middleware.csrf import _get_new_csrf_string
    from django.utils.module_loading import import_string

    session = import_string(f"{settings.SESSION_ENGINE}.SessionStore")()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]  # the one that loads users
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    token = _get_new_csrf_string()
    request = Request(
        f"http://127.0.0.1:{port}{path}",
        method="POST",
        data=urlencode({**data, "csrfmiddlewaretoken": token}).encode(),
        headers={
            "Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}; "
            f"{settings.CSRF_COOKIE_NAME}={token}",
        },
    )

    class NoRedirect(HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, response.headers.get("Location", "")
    except HTTPError as error:
        return error.code, error.headers.get("Location", "")


@pytest.mark.django_db(transaction=True)
def test_probe_commands_follow_the_processes(process_env, processes):
    """`bin/probe worker|beat` fail before start, pass while running, fail after stop."""
    probe = str(APP_DIR / "bin" / "probe")
    worker = processes.start("worker", WORKER, process_env)
    beat = processes.start("beat", [str(APP_DIR / "bin" / "beat")], process_env)

    def probe_ok(proc, name) -> bool:
        env = {**process_env, "CELERY_HEARTBEAT_DIR": str(proc.heartbeat_dir)}
        result = subprocess.run([probe, name], env=env, capture_output=True, check=False)
        return result.returncode == 0

    assert not probe_ok(worker, "beat")  # nothing there yet: fails
    wait_for(lambda: probe_ok(worker, "worker"), 30, "the worker heartbeat")
    wait_for(lambda: probe_ok(beat, "beat"), 30, "the beat tick")
    # SIGTERM is a warm shutdown and a clean exit
    assert processes.stop(worker) == 0, processes.log(worker)
    assert not probe_ok(worker, "worker")
    assert processes.stop(beat) == 0, processes.log(beat)
