"""axe-core (axe-playwright-python) on every page an anonymous and a signed-in user can
reach, in the light and the dark theme: no violation of a WCAG 2.0/2.1 A or AA rule.

Django's admin is left out: its markup is Django's own, not this project's.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from notifications.models import Notification
from todos.models import Category, Todo

pytestmark = pytest.mark.django_db(transaction=True)

WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_A_AA}, "resultTypes": ["violations"]}
SCHEMES = ["light", "dark"]


class Audit:
    """Runs axe on each page visited and keeps what it found, page by page."""

    def __init__(self, page, base_url: str):
        self.page, self.base_url = page, base_url
        self.axe = Axe()
        self.found: dict[str, list[str]] = {}

    def check(self, name: str) -> None:
        results = self.axe.run(self.page, options=AXE_OPTIONS)
        self.found[name] = [
            f"{v['id']} ({v['impact']}): {node['target']} {node.get('failureSummary', '')}"
            for v in results.response["violations"]
            for node in v["nodes"]
        ]

    def visit(self, name: str, path: str, status: int = 200) -> None:
        response = self.page.goto(f"{self.base_url}{path}")
        assert response.status == status, f"{name}: {path} answered {response.status}"
        self.check(name)

    def assert_clean(self, scheme: str) -> None:
        failing = {name: found for name, found in self.found.items() if found}
        print(
            f"\naxe ({scheme}): {len(self.found)} pages, {sum(map(len, failing.values()))} "
            f"violations of WCAG 2.1 A/AA"
        )
        assert failing == {}


@pytest.fixture(params=SCHEMES)
def audit(request, page, base_url):
    page.emulate_media(color_scheme=request.param)
    audit = Audit(page, base_url)
    audit.scheme = request.param
    return audit


def test_every_anonymous_page(audit, make_user):
    user = make_user("reset-me")
    audit.visit("login", "/accounts/login/")
    audit.page.get_by_role("button", name="Log in").click()  # the same page, with errors
    audit.check("login with errors")
    audit.visit("signup", "/accounts/signup/")
    audit.page.get_by_role("button", name="Sign up").click()
    audit.check("signup with errors")
    audit.visit("password reset", "/accounts/password_reset/")
    audit.visit("password reset sent", "/accounts/password_reset/done/")
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    audit.visit("new password", reverse("password_reset_confirm", args=[uid, token]))
    audit.visit("reset link expired", reverse("password_reset_confirm", args=[uid, "1-x"]))
    audit.visit("password set", "/accounts/reset/done/")
    audit.visit("help", "/help/")
    audit.visit("not found", "/no-such-page/", status=404)
    audit.assert_clean(audit.scheme)


def test_every_signed_in_page(audit, make_user):
    page, user = audit.page, make_user("pat", password="a-Str0ng-passphrase")
    page.goto(f"{audit.base_url}/accounts/login/")
    page.get_by_label("Username").fill("pat")
    page.get_by_label("Password").fill("a-Str0ng-passphrase")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{audit.base_url}/")
    audit.check("empty list")

    now = timezone.now()
    home = Category.objects.create(user=user, name="Home")
    todo = Todo.objects.create(
        user=user, title="Renew passport", due_at=now - timedelta(hours=3), priority=3
    )
    Todo.objects.create(
        user=user, title="Call the dentist", due_at=now + timedelta(hours=1), remind_at=now
    )
    Todo.objects.create(user=user, title="Water plants", category=home, priority=1, notes="All")
    Todo.objects.create(user=user, title="Pay the bill", status=Todo.Status.DONE)
    Notification.objects.create(user=user, kind="reminder", title="Reminder: call", todo=todo)
    Notification.objects.create(
        user=user, kind="reminder", title="Reminder: failed", email_status="failed"
    )

    audit.visit("list", "/")
    audit.visit("list, filtered", f"/?status=open&priority=high&category={home.pk}&sort=due")
    audit.visit("list, nothing matches", "/?q=nothing-like-this")
    audit.visit("new todo", "/todos/new/")
    page.get_by_role("button", name="Add todo").click()
    audit.check("new todo with errors")
    audit.visit("edit todo", f"/todos/{todo.pk}/edit/")
    audit.visit("delete todo", f"/todos/{todo.pk}/delete/")
    audit.visit("categories", "/categories/")
    audit.visit("rename category", f"/categories/{home.pk}/edit/")
    audit.visit("delete category", f"/categories/{home.pk}/delete/")
    audit.visit("notifications", "/notifications/")
    audit.visit("profile", "/accounts/profile/")
    audit.visit("change password", "/accounts/password_change/")
    audit.visit("password changed", "/accounts/password_change/done/")
    audit.visit("help", "/help/")
    audit.visit("not found", f"/todos/{todo.pk + 1000}/edit/", status=404)
    page.get_by_role("button", name="Log out").click()
    audit.check("logged out")
    Notification.objects.all().delete()
    Category.objects.all().delete()
    page.goto(f"{audit.base_url}/accounts/login/")  # signed out: log in again, nothing left
    page.get_by_label("Username").fill("pat")
    page.get_by_label("Password").fill("a-Str0ng-passphrase")
    page.get_by_role("button", name="Log in").click()
    audit.visit("no notifications", "/notifications/")
    audit.visit("no categories", "/categories/")
    audit.assert_clean(audit.scheme)


def test_the_audit_finds_what_it_should(page):
    """The same options on a page with known faults: axe reports each of them."""
    page.set_content(
        '<html lang="en"><title>x</title><body><img src="a.png">'
        '<p class="faint">Grey on white</p><input type="text"></body></html>'
    )
    page.add_style_tag(content=".faint { color: #bbb; background: #fff; }")
    results = Axe().run(page, options=AXE_OPTIONS)
    assert {v["id"] for v in results.response["violations"]} >= {
        "image-alt",
        "color-contrast",
        "label",
    }
