"""Playwright drives a real Chromium against pytest-django's live server, or, for the
journey (test_journey.py), against any running app: `pytest tests/browser/test_journey.py
--base-url http://todo.localhost:8080` (what `invoke cluster.check` runs through the ingress).

Debian's /usr/bin/chromium is used when present (CI installs it), else the browser
that `playwright install chromium` downloads; PLAYWRIGHT_CHROMIUM_EXECUTABLE overrides.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root in a container-like sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # The test machine has no internet: stop Chromium's own background traffic.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session", autouse=True)
def _orm_beside_playwright():
    """Playwright's sync API runs an event loop in the test thread; the ORM calls made there
    (database setup, creating users, reading results) are still synchronous and safe."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, playwright):
    executable = os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE") or shutil.which("chromium")
    if not executable and not Path(playwright.chromium.executable_path).exists():
        pytest.exit(
            "No Chromium for the browser tests: install Debian's (`sudo apt-get install chromium`),"
            " or Playwright's (`uv run playwright install chromium`), or skip them with"
            " `uv run invoke test --no-browser`.",
            returncode=3,
        )
    args = {**browser_type_launch_args, "args": CHROMIUM_ARGS}
    if executable:
        args["executable_path"] = executable
    return args


@pytest.fixture
def signed_in_page(page, live_server, make_user):
    user = make_user("pat", password="a-Str0ng-passphrase")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("pat")
    page.get_by_label("Password").fill("a-Str0ng-passphrase")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.user = user
    return page


@pytest.fixture
def app_url(request, base_url) -> str:
    """The app under test: --base-url if given, else pytest-django's live server on the
    test database."""
    if base_url:
        return base_url.rstrip("/")
    request.getfixturevalue("transactional_db")
    return request.getfixturevalue("live_server").url
