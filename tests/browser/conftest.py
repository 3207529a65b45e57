"""Playwright drives a real Chromium against pytest-django's live server, or, for the
journey (test_journey.py), against any running app: `pytest tests/browser/test_journey.py
--base-url http://todo.localhost:8080` (what `invoke cluster.check` runs through the ingress).

PLAYWRIGHT_CHROMIUM_EXECUTABLE when set, else the distribution's `chromium` (Debian's;
`invoke setup` installs it), else the browser that `playwright install chromium` fetched.
"""

import pytest

from ops.prerequisites import SETUP_COMMAND, chromium_executable

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


def pytest_collection_modifyitems(config, items):
    running_app = config.getoption("--base-url")
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
        # The live server serves from the test database; the app --base-url names has its own.
        if item.get_closest_marker("any_app") and not running_app:
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture(scope="session")
def chromium(playwright):
    executable = chromium_executable(playwright)
    if not executable:
        pytest.exit(
            f"No Chromium for the browser tests: `{SETUP_COMMAND}` installs one, or skip"
            " them with `uv run invoke test --no-browser`.",
            returncode=3,
        )
    return executable


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, chromium):
    return {**browser_type_launch_args, "args": CHROMIUM_ARGS, "executable_path": chromium}


@pytest.fixture(scope="session")
def base_url(pytestconfig, request):
    """Where the browser goes: --base-url when given, else pytest-django's live server."""
    given = pytestconfig.getoption("--base-url")
    return given.rstrip("/") if given else request.getfixturevalue("live_server").url


# How Chromium reports a Content-Security-Policy violation on the console.
CSP_VIOLATION = "Content Security Policy"


@pytest.fixture
def csp_violations() -> list[str]:
    """The CSP violations the test's pages reported (the `context` fixture below fills it)."""
    return []


@pytest.fixture
def context(context, csp_violations):
    """Every browser test fails on a Content-Security-Policy violation in any of its pages."""

    def record(message):
        if message.type == "error" and CSP_VIOLATION in message.text:
            csp_violations.append(f"{message.location.get('url')}: {message.text}")

    context.on("console", record)
    yield context
    assert csp_violations == [], "Content-Security-Policy violations:\n" + "\n".join(csp_violations)


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
