"""One request followed from web into the worker, and the metrics both sides expose, with
real processes on the real Redis broker: gunicorn (two workers), a Celery worker, beat
and the Celery exporter, started as the image starts them (app/bin/*)."""

from __future__ import annotations

import json
import re
import uuid
from http.cookies import SimpleCookie
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPRedirectHandler, Request, build_opener, urlopen

import pytest

from tests.processes import APP_DIR, WORKER, free_port, wait_for

from .conftest import scrape, value

pytestmark = pytest.mark.slow

DELIVER_EMAIL = "notifications.tasks.deliver_email"


class NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def listening(port: int) -> bool:
    try:
        with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


def sign_up(port: int, username: str, request_id: str) -> int:
    """The browser's way: the form and its CSRF cookie, then the POST with our request id.

    Production cookies are Secure, which a plain-HTTP client keeps to itself: the CSRF
    cookie is read from the response and sent back by hand.
    """
    with urlopen(f"http://127.0.0.1:{port}/accounts/signup/", timeout=10) as response:
        page = response.read().decode()
        cookie = SimpleCookie(response.headers["Set-Cookie"])["csrftoken"].value
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    form = {
        "csrfmiddlewaretoken": token,
        "username": username,
        "email": f"{username}@example.com",
        "password1": "a-Str0ng-passphrase",
        "password2": "a-Str0ng-passphrase",
    }
    request = Request(
        f"http://127.0.0.1:{port}/accounts/signup/",
        data=urlencode(form).encode(),
        headers={"Cookie": f"csrftoken={cookie}", "X-Request-ID": request_id},
    )
    try:
        with build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status
    except HTTPError as error:
        assert error.headers["X-Request-ID"] == request_id
        return error.code


@pytest.mark.django_db(transaction=True)
def test_one_request_is_followed_into_the_worker_and_both_sides_are_measured(
    process_env, processes
):
    web_port, web_metrics, exporter_metrics = free_port(), free_port(), free_port()
    env = {**process_env, "DJANGO_LOG_FORMAT": "json"}
    web = processes.start(
        "web",
        [str(APP_DIR / "bin" / "web")],
        {**env, "PORT": str(web_port), "METRICS_PORT": str(web_metrics), "WEB_CONCURRENCY": "2"},
    )
    worker = processes.start("worker", WORKER, env)
    exporter = processes.start(
        "exporter",
        [str(APP_DIR / "bin" / "celery-exporter")],
        {**env, "METRICS_PORT": str(exporter_metrics)},
    )
    beat = processes.start("beat", [str(APP_DIR / "bin" / "beat")], env)
    wait_for(lambda: listening(web_port), 60, f"web\n{processes.log(web)}")
    wait_for(lambda: listening(exporter_metrics), 60, f"exporter\n{processes.log(exporter)}")
    wait_for(
        lambda: value(scrape(exporter_metrics), "celery_workers") == 1,
        60,
        f"the worker's heartbeat at the exporter\n{processes.log(worker)}",
    )

    # The user signs up; the welcome email is a task the worker runs.
    request_id = f"e2e-{uuid.uuid4()}"
    assert sign_up(web_port, "watcher", request_id) == 302

    def task_lines():
        return [
            line
            for line in json_lines(processes.log(worker))
            if line.get("task_name") == DELIVER_EMAIL
        ]

    lines = wait_for(task_lines, 60, f"the welcome email task\n{processes.log(worker)}")
    # Every line the task logged carries its id and the id of the request that queued it.
    assert {line["request_id"] for line in lines} == {request_id}
    assert len({line["task_id"] for line in lines}) == 1
    (access,) = [
        line
        for line in json_lines(processes.log(web))
        if line.get("logger") == "gunicorn.access" and line.get("method") == "POST"
    ]
    assert (access["path"], access["status"], access["request_id"]) == (
        "/accounts/signup/",
        302,
        request_id,
    )
    print("\ncorrelated log lines:")
    print(json.dumps(access))
    print(json.dumps(lines[-1]))

    # Web: gunicorn's master serves both workers' counts, on its own port only.
    web_samples = scrape(web_metrics)
    responses = "django_http_responses_total_by_status_view_method_total"
    assert value(web_samples, responses, view="accounts:signup", method="POST", status="302") == 1
    assert value(web_samples, responses, view="accounts:signup", method="GET", status="200") == 1
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert value(web_samples, latency, view="accounts:signup", method="POST") == 1
    assert value(web_samples, "django_db_execute_total", vendor="postgresql") >= 3
    assert value(web_samples, "django_db_new_connections_total", vendor="postgresql") >= 1
    with pytest.raises(HTTPError) as not_there:
        urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5)
    assert not_there.value.code == 404

    # Celery: the task's events, the queue, beat's last tick.
    def task_counted():
        found = scrape(exporter_metrics)
        return found if value(found, "celery_task_succeeded_total", task=DELIVER_EMAIL) else None

    celery_samples = wait_for(task_counted, 30, "the task's events at the exporter")
    assert value(celery_samples, "celery_task_received_total", task=DELIVER_EMAIL) == 1
    assert value(celery_samples, "celery_task_runtime_seconds_count", task=DELIVER_EMAIL) == 1
    assert value(celery_samples, "celery_queue_length", queue="celery") is not None
    assert value(celery_samples, "celery_broker_up") == 1
    beat_age = wait_for(
        lambda: value(scrape(exporter_metrics), "celery_beat_tick_age_seconds"),
        60,
        f"beat's first tick\n{processes.log(beat)}",
    )
    assert 0 <= beat_age < 60
    # The closing note's sample of both endpoints (buckets left out).
    for title, samples in (("web", web_samples), ("Celery", scrape(exporter_metrics))):
        print(f"{title} metrics sample:")
        for (name, labels), sample in samples.items():
            relevant = title == "Celery" or dict(labels).get("view") == "accounts:signup"
            if relevant and not name.endswith("_bucket"):
                print(f"  {name}{dict(labels)} {sample}")
    for proc in (web, worker, exporter, beat):
        assert proc.poll() is None, processes.log(proc)
