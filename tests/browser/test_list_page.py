"""The list page stays in step with itself without a reload: the count, the empty state,
the clear-done button and the unread badge follow every htmx change (out-of-band swaps).
And the keyboard shortcuts the help page lists do what it says."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from notifications.models import Notification
from todos.models import Todo

pytestmark = pytest.mark.django_db(transaction=True)


def sign_up(page, base_url, username="fresh"):
    page.goto(f"{base_url}/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill("correct-horse-battery-9")
    page.get_by_label("Password confirmation").fill("correct-horse-battery-9")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Your todos")).to_be_visible()


def test_the_page_follows_add_complete_and_delete_without_a_reload(page, base_url):
    sign_up(page, base_url)
    summary, empty = page.locator("#todo-summary .count"), page.locator("#todo-empty")
    clear_done = page.get_by_role("button", name="Clear 1 done")
    # A new account starts clean: no unread notification, an empty state that says what to do.
    expect(page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    expect(page.locator(".badge-count")).to_have_count(0)
    expect(summary).to_have_text("0 todos")
    expect(empty.get_by_role("heading", name="Nothing to do yet")).to_be_visible()
    expect(clear_done).to_have_count(0)
    page.evaluate("window.__noReload = true")

    page.get_by_label("New todo").fill("Buy milk")
    page.get_by_label("New todo").press("Enter")
    expect(page.locator(".todo-title")).to_have_text(["Buy milk"])
    expect(summary).to_have_text("1 todo")
    expect(empty).to_be_empty()
    expect(clear_done).to_have_count(0)

    page.get_by_role("button", name="Complete “Buy milk”").click()
    expect(clear_done).to_be_visible()
    # htmx gives the focus back to the swapped row's button, for the next key press.
    expect(page.get_by_role("button", name="Reopen “Buy milk”")).to_be_focused()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete “Buy milk”").click()
    expect(page.locator(".todo")).to_have_count(0)
    expect(summary).to_have_text("0 todos")
    expect(empty.get_by_role("heading", name="Nothing to do yet")).to_be_visible()
    expect(clear_done).to_have_count(0)
    assert page.evaluate("window.__noReload") is True


def test_marking_a_notification_read_updates_the_badge_in_place(signed_in_page, base_url):
    page = signed_in_page
    for title in ("Reminder: call Sam", "Reminder: pay rent"):
        Notification.objects.create(user=page.user, kind="reminder", title=title)
    page.goto(f"{base_url}/notifications/")
    badge = page.locator("#unread-badge")
    expect(badge).to_have_text("2 unread")
    page.get_by_role("button", name="Mark read").first.click()
    expect(badge).to_have_text("1 unread")
    page.get_by_role("button", name="Mark read").click()
    expect(badge).to_have_text("")
    expect(page.get_by_role("button", name="Mark all read")).to_have_count(0)
    assert not Notification.objects.filter(read_at=None).exists()


def test_a_todo_the_filters_hide_is_counted_out_and_said(signed_in_page, base_url):
    page = signed_in_page
    Todo.objects.create(user=page.user, title="Late", due_at=timezone.now() - timedelta(hours=2))
    page.goto(f"{base_url}/?due=overdue")
    expect(page.locator("#todo-summary")).to_contain_text("1 todo matches your filters")
    page.get_by_label("New todo").fill("Not due at all")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("“Not due at all” is not shown")).to_be_visible()
    expect(page.locator(".todo-title")).to_have_text(["Late"])
    page.get_by_role("button", name="Complete “Late”").click()  # done is not overdue
    expect(page.locator(".todo")).to_have_count(0)
    expect(page.get_by_role("heading", name="No todos match these filters")).to_be_visible()
    expect(page.get_by_role("button", name="Clear 1 done")).to_be_visible()


def test_keyboard_shortcuts_from_the_help_page(signed_in_page, base_url):
    page = signed_in_page
    page.goto(f"{base_url}/")
    page.get_by_role("link", name="Help and keyboard shortcuts").click()
    shortcuts = page.get_by_role("table")
    expect(shortcuts.get_by_role("row", name="n Add a todo")).to_be_visible()
    expect(shortcuts.get_by_role("row", name="/ Search your list")).to_be_visible()

    page.keyboard.press("n")  # not on the list: opens the form
    expect(page.get_by_role("heading", name="New todo")).to_be_visible()
    page.goto(f"{base_url}/")
    page.keyboard.press("/")
    expect(page.get_by_label("Search")).to_be_focused()
    expect(page.get_by_label("Search")).to_have_value("")  # the key itself is not typed
    page.keyboard.press("n")  # typed into the search field, not taken as a shortcut
    expect(page.get_by_label("Search")).to_have_value("n")
    page.get_by_label("Search").blur()  # out of the field, shortcuts work again
    page.keyboard.press("n")
    expect(page.get_by_label("New todo")).to_be_focused()
