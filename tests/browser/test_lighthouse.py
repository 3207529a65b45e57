"""Lighthouse (npm, pinned by package-lock.json) against gunicorn with production settings,
in Chromium, on the sign-in page and a signed-in list page: accessibility and best
practices 100, performance at least 95 (the median of three runs when one falls short).
The scores are printed (docs/performance.md)."""

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


def check(name: str, audit) -> None:
    """Accessibility and best practices are the same from run to run; the performance
    score moves with the machine's load, so below its minimum it is the median of three
    runs that counts, as Lighthouse CI asserts it."""
    report = audit()
    found = scores(report)
    print(f"\nLighthouse {report['lighthouseVersion']}, {name}: {found}")
    for category in ("accessibility", "best-practices"):
        assert found[category] >= MINIMUM[category], (category, failed_audits(report, category))
    runs = [found["performance"]]
    if runs[0] < MINIMUM["performance"]:
        runs += [scores(audit())["performance"] for _ in range(2)]
        print(f"performance below {MINIMUM['performance']} once; three runs: {runs}")
    median = sorted(runs)[len(runs) // 2]
    assert median >= MINIMUM["performance"], (runs, failed_audits(report, "performance"))


def test_the_sign_in_page(production_web, chromium, tmp_path):
    url = f"{production_web}/accounts/login/"
    check("sign-in page", lambda: lighthouse(url, chromium, tmp_path))


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
    check("list page", lambda: lighthouse(f"{production_web}/", chromium, tmp_path, headers))


@pytest.mark.parametrize(
    ("performance", "passes"), [([100], True), ([90, 96, 97], True), ([90, 80, 97], False)]
)
def test_a_low_performance_score_is_judged_by_the_median_of_three(performance, passes):
    def report(score: int) -> dict:
        categories = {name: {"score": 1.0, "auditRefs": []} for name in CATEGORIES}
        categories["performance"]["score"] = score / 100
        return {"lighthouseVersion": "test", "categories": categories, "audits": {}}

    runs = iter(performance)
    if passes:
        check("page", lambda: report(next(runs)))
    else:
        with pytest.raises(AssertionError):
            check("page", lambda: report(next(runs)))
    assert next(runs, None) is None  # one run, or three
