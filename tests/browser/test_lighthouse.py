"""Lighthouse (npm, pinned by package-lock.json) against gunicorn with production settings,
in Chromium, on the sign-in page and a signed-in list page: accessibility and best
practices 100, performance at least 95. The scores are printed (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from urllib.request import urlopen

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from ops.prerequisites import NODE_BIN, SETUP_COMMAND
from tests.processes import APP_DIR, free_port, wait_for
from todos.models import Category, Todo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LIGHTHOUSE = NODE_BIN / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices")
MINIMUM = {"performance": 95, "accessibility": 100, "best-practices": 100}
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"


@pytest.fixture
def production_web(process_env, processes):
    """gunicorn as the image runs it (production settings, collected static files), on
    plain HTTP on loopback."""
    port = free_port()
    web = processes.start(
        "web",
        [str(APP_DIR / "bin" / "web")],
        {
            **process_env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "METRICS_PORT": str(free_port()),
            "WEB_CONCURRENCY": "2",
        },
    )

    def ready() -> bool:
        try:
            with urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
                return response.status == 200
        except OSError:
            return web.poll() is not None  # exited: stop waiting, the test says why

    wait_for(ready, 60, "gunicorn to serve the sign-in page")
    assert web.poll() is None, processes.log(web)
    return f"http://127.0.0.1:{port}"


def lighthouse(url: str, chromium: str, tmp_path, headers: dict | None = None) -> dict:
    assert LIGHTHOUSE.exists(), f"Lighthouse is missing: {SETUP_COMMAND}"
    report = tmp_path / "report.json"
    command = [
        str(LIGHTHOUSE),
        url,
        "--quiet",
        f"--chrome-flags={CHROME_FLAGS}",
        f"--only-categories={','.join(CATEGORIES)}",
        "--output=json",
        f"--output-path={report}",
    ]
    if headers:
        command.append(f"--extra-headers={json.dumps(headers)}")
    result = subprocess.run(
        command,
        env={**os.environ, "CHROME_PATH": chromium},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(report.read_text())
    assert "runtimeError" not in found, found["runtimeError"]
    assert found["finalDisplayedUrl"] == url, "redirected: not the page asked for"
    return found


def scores(report: dict) -> dict[str, int]:
    return {name: round(report["categories"][name]["score"] * 100) for name in CATEGORIES}


def failed_audits(report: dict, category: str) -> list[str]:
    refs = report["categories"][category]["auditRefs"]
    audits = report["audits"]
    return [
        f"{ref['id']}: {audits[ref['id']]['title']}"
        for ref in refs
        if ref["weight"] and (audits[ref["id"]]["score"] or 0) < 1
    ]


def check(name: str, report: dict) -> None:
    found = scores(report)
    print(f"\nLighthouse {report['lighthouseVersion']}, {name}: {found}")
    for category, minimum in MINIMUM.items():
        assert found[category] >= minimum, (category, failed_audits(report, category))


def test_the_sign_in_page(production_web, chromium, tmp_path):
    check("sign-in page", lighthouse(f"{production_web}/accounts/login/", chromium, tmp_path))


def test_the_list_page_of_a_signed_in_user(production_web, chromium, tmp_path, make_user):
    user = make_user("lighthouse")
    home = Category.objects.create(user=user, name="Home")
    now = timezone.now()
    for i in range(12):
        Todo.objects.create(
            user=user,
            title=f"Todo number {i}",
            category=home if i % 2 else None,
            priority=(1, 2, 3)[i % 3],
            due_at=now + timedelta(hours=i - 3),
            status=Todo.Status.DONE if i % 5 == 4 else Todo.Status.OPEN,
        )
    browser = Client()
    browser.force_login(user)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}
    check("list page", lighthouse(f"{production_web}/", chromium, tmp_path, headers))
