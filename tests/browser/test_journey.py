"""The journey a new user takes, with htmx in place: sign up, add, complete, filter, delete.

It runs against pytest-django's live server in the suite, and against a running app with
`--base-url URL`: `invoke dev`, or the kind cluster through its ingress (`invoke
cluster.check`). So it checks only what the pages show, never the database directly, and
signs up a user of its own each run.
"""

import uuid

import pytest
from playwright.sync_api import expect


@pytest.mark.any_app
def test_sign_up_add_complete_filter_delete_with_htmx(page, base_url):
    username = f"journey-{uuid.uuid4().hex[:8]}"
    page.goto(f"{base_url}/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill("correct-horse-battery-9")
    page.get_by_label("Password confirmation").fill("correct-horse-battery-9")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text(f"Welcome, {username}!")).to_be_visible()

    # A marker on window survives only if the page is never reloaded.
    page.evaluate("window.__noReload = true")
    for title in ("Buy milk", "Walk the dog", "File taxes"):
        page.get_by_label("New todo").fill(title)
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.locator(".todo-title", has_text=title)).to_be_visible()
        expect(page.get_by_label("New todo")).to_have_value("")
    expect(page.locator(".todo")).to_have_count(3)

    page.get_by_role("button", name="Complete “Walk the dog”").click()
    expect(page.locator(".todo-done .todo-title")).to_have_text("Walk the dog")

    page.get_by_label("Status").select_option("done")
    expect(page.locator(".todo")).to_have_count(1)
    expect(page).to_have_url(f"{base_url}/?status=done")
    page.get_by_label("Status").select_option("")
    expect(page.locator(".todo")).to_have_count(3)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete “Buy milk”").click()
    expect(page.locator(".todo")).to_have_count(2)
    expect(page.get_by_text("Deleted “Buy milk”.")).to_be_visible()
    assert page.evaluate("window.__noReload") is True

    # What was saved, as a fresh load of the page shows it.
    page.reload()
    expect(page.locator(".todo-title")).to_have_text(["File taxes", "Walk the dog"], timeout=5000)
    expect(page.locator(".todo-done .todo-title")).to_have_text("Walk the dog")
