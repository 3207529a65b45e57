import html
import re
import zoneinfo
from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from todos.models import Category, Todo

pytestmark = pytest.mark.django_db

LIST = reverse("todos:list")
CREATE = reverse("todos:create")


def local_input(moment) -> str:
    """A datetime as the browser's datetime-local input sends it (site zone: UTC)."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def make_todo(user, **fields) -> Todo:
    fields.setdefault("title", "Buy milk")
    return Todo.objects.create(user=user, **fields)


def top_level_elements(fragment: str) -> list[tuple[str, bool]]:
    """(id, swapped out of band) of each top-level element of an htmx response."""
    from html.parser import HTMLParser

    found, depth = [], [0]

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if depth[0] == 0:
                found.append((dict(attrs).get("id", tag), "hx-swap-oob" in dict(attrs)))
            if tag not in {"input", "br", "img", "meta", "link", "use"}:
                depth[0] += 1

        def handle_endtag(self, tag):
            if tag not in {"input", "br", "img", "meta", "link", "use"}:
                depth[0] -= 1

    Parser().feed(fragment)
    return found


def htmx_post(client, url, data=None, page=LIST):
    """A POST as htmx sends it from `page` (its URL carries the page's filters)."""
    return client.post(
        url, data or {}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=f"http://testserver{page}"
    ).content.decode()


def fragment(html_text: str, element_id: str) -> str:
    match = re.search(rf'<(\w+) id="{element_id}"[^>]*>(.*?)</\1>\s*(?=<|$)', html_text, re.S)
    assert match, f"no #{element_id} in the response"
    return match.group(2)


class TestPageStateOutOfBand:
    """After each htmx change, everything the page derives from the todos comes along."""

    def test_quick_add_to_an_empty_list_sends_the_count_and_hides_the_empty_state(
        self, user_client, user
    ):
        html_text = htmx_post(
            user_client, CREATE, {"form": "quick", "title": "First", "priority": 2}
        )
        todo = Todo.objects.get(user=user)
        elements = top_level_elements(html_text)
        assert elements[0] == (f"todo-{todo.pk}", False)  # the row, swapped in place
        oob = {element for element, is_oob in elements if is_oob}
        assert oob == {"todo-summary", "todo-empty", "clear-done", "messages", "quick-add"}
        assert "1 todo<" in fragment(html_text, "todo-summary")
        assert fragment(html_text, "todo-empty").strip() == ""
        assert fragment(html_text, "clear-done").strip() == ""  # nothing done yet

    def test_completing_shows_clear_done_and_deleting_the_last_brings_the_empty_state_back(
        self, user_client, user
    ):
        todo = make_todo(user, title="Only one")
        done = htmx_post(user_client, reverse("todos:toggle", args=[todo.pk]))
        assert "Clear 1 done" in fragment(done, "clear-done")
        deleted = htmx_post(user_client, reverse("todos:delete", args=[todo.pk]))
        assert "0 todos" in fragment(deleted, "todo-summary")
        assert "Nothing to do yet" in fragment(deleted, "todo-empty")
        assert fragment(deleted, "clear-done").strip() == ""

    def test_counts_follow_the_filters_of_the_page_the_change_comes_from(self, user_client, user):
        make_todo(user, title="Open one")
        todo = make_todo(user, title="Will be done")
        html_text = htmx_post(
            user_client, reverse("todos:toggle", args=[todo.pk]), page=f"{LIST}?status=open"
        )
        # Done now, so the open-only page drops the row and counts what it still shows.
        assert not any(element == f"todo-{todo.pk}" for element, _ in top_level_elements(html_text))
        assert "1 todo matches your filters" in fragment(html_text, "todo-summary")
        assert "does not match the filters" in html_text

    def test_the_summary_counts_overdue_todos(self, user_client, user):
        make_todo(user, title="Late", due_at=timezone.now() - timedelta(hours=1))
        make_todo(user, title="Later", due_at=timezone.now() + timedelta(days=1))
        html_text = user_client.get(LIST).content.decode()
        assert "2 todos" in html_text and "1 overdue" in html_text


class TestCreate:
    def test_full_form_creates_with_every_field(self, user_client, user):
        category = Category.objects.create(user=user, name="Home")
        due = timezone.now() + timedelta(days=2)
        response = user_client.post(
            CREATE,
            {
                "title": "Pay rent",
                "notes": "Before the 1st",
                "due_at": local_input(due),
                "priority": 3,
                "category": category.pk,
                "reminder": "1h",
            },
        )
        assert response.status_code == 302
        todo = Todo.objects.get(user=user)
        assert (todo.title, todo.notes, todo.priority, todo.category) == (
            "Pay rent",
            "Before the 1st",
            Todo.Priority.HIGH,
            category,
        )
        assert todo.remind_before == timedelta(hours=1)
        assert todo.remind_at == todo.due_at - timedelta(hours=1)
        assert todo.status == Todo.Status.OPEN

    def test_quick_add_without_javascript_redirects_to_the_list(self, user_client, user):
        response = user_client.post(CREATE, {"form": "quick", "title": "Call mum", "priority": 2})
        assert response.status_code == 302 and response.url == LIST
        assert Todo.objects.get(user=user).title == "Call mum"

    def test_quick_add_with_htmx_returns_the_new_row_and_a_fresh_form(self, user_client, user):
        response = user_client.post(
            CREATE,
            {"form": "quick", "title": "Water plants", "priority": 2},
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 200
        html = response.content.decode()
        todo = Todo.objects.get(user=user)
        assert f'id="todo-{todo.pk}"' in html
        assert 'id="quick-add"' in html and 'hx-swap-oob="true"' in html
        assert "Added “Water plants”" in html

    def test_quick_add_errors_without_javascript_open_the_full_form(self, user_client):
        response = user_client.post(CREATE, {"form": "quick", "title": "", "priority": 3})
        html = response.content.decode()
        assert response.status_code == 400
        assert "<h1>New todo</h1>" in html and 'name="notes"' in html
        assert "This field is required." in html
        assert '<option value="3" selected>High</option>' in html  # what was typed is kept

    def test_quick_add_errors_retarget_the_form(self, user_client):
        response = user_client.post(
            CREATE, {"form": "quick", "title": "", "priority": 2}, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 200
        assert response["HX-Retarget"] == "#quick-add"
        assert "This field is required." in response.content.decode()
        assert not Todo.objects.exists()

    @pytest.mark.parametrize(
        ("field", "value", "error"),
        [
            ("title", "x" * 201, "at most 200 characters"),
            ("title", "", "This field is required."),
            ("notes", "n" * 5001, "at most 5000 characters"),
            ("due_at", "2026-02-30T10:00", "Enter a valid date/time."),
            ("due_at", "tomorrow-ish", "Enter a valid date/time."),
            ("priority", "9", "Select a valid choice."),
            ("reminder", "1y", "Select a valid choice."),
            ("category", "not-an-id", "Select a valid choice."),
        ],
    )
    def test_bad_input_is_rejected_next_to_its_field(self, user_client, field, value, error):
        data = {"title": "Valid", "priority": 2, field: value}
        response = user_client.post(CREATE, data)
        assert response.status_code == 400
        assert error in response.content.decode()
        assert not Todo.objects.exists()

    @pytest.mark.parametrize("quick", [False, True])
    def test_errors_are_tied_to_their_field_for_screen_readers(self, user_client, quick):
        data = {"title": "x" * 201, "priority": 2, **({"form": "quick"} if quick else {})}
        headers = {"HTTP_HX_REQUEST": "true"} if quick else {}  # quick: the in-place form
        html = user_client.post(CREATE, data, **headers).content.decode()
        field = re.search(r"<input[^>]*name=\"title\"[^>]*>", html).group(0)
        assert 'aria-invalid="true"' in field
        assert "id_title_error" in re.search(r'aria-describedby="([^"]*)"', field).group(1)
        assert html.count('id="id_title_error"') == 1
        assert "at most 200 characters" in html.split('id="id_title_error"')[1].split("</div>")[0]

    def test_relative_reminder_needs_a_due_time(self, user_client):
        response = user_client.post(CREATE, {"title": "x", "priority": 2, "reminder": "15m"})
        assert response.status_code == 400
        assert "Set a due time" in response.content.decode()

    def test_custom_reminder_needs_a_time(self, user_client):
        response = user_client.post(CREATE, {"title": "x", "priority": 2, "reminder": "custom"})
        assert response.status_code == 400
        assert "Choose when to be reminded." in response.content.decode()

    def test_another_users_category_is_not_accepted(self, user_client, other_user):
        foreign = Category.objects.create(user=other_user, name="Secret")
        response = user_client.post(CREATE, {"title": "x", "priority": 2, "category": foreign.pk})
        assert response.status_code == 400
        assert "Select a valid choice." in response.content.decode()
        assert not Todo.objects.exists()

    def test_times_are_read_in_the_users_time_zone(self, client, make_user):
        tokyo = make_user("kenji", time_zone="Asia/Tokyo")
        client.force_login(tokyo)
        client.post(CREATE, {"title": "Lunch", "priority": 2, "due_at": "2026-12-01T12:00"})
        due = Todo.objects.get(user=tokyo).due_at
        assert due.astimezone(UTC).strftime("%Y-%m-%d %H:%M") == "2026-12-01 03:00"


class TestEditCompleteDelete:
    def test_edit_moves_due_and_rearms_the_reminder(self, user_client, user):
        past = timezone.now() - timedelta(hours=2)
        todo = make_todo(
            user, due_at=past, remind_at=past, remind_before=timedelta(0), reminded_at=past
        )
        assert todo.shows_overdue
        later = timezone.now() + timedelta(days=1)
        response = user_client.post(
            reverse("todos:edit", args=[todo.pk]),
            {"title": "Moved", "priority": 2, "due_at": local_input(later), "reminder": "at_due"},
        )
        assert response.status_code == 302
        todo.refresh_from_db()
        assert todo.title == "Moved"
        assert todo.reminded_at is None and todo.remind_at == todo.due_at
        assert not todo.shows_overdue

    def test_edit_form_shows_the_current_reminder_choice(self, user_client, user):
        due = timezone.now() + timedelta(days=1)
        todo = make_todo(
            user, due_at=due, remind_at=due - timedelta(days=1), remind_before=timedelta(days=1)
        )
        html = user_client.get(reverse("todos:edit", args=[todo.pk])).content.decode()
        assert '<option value="1d" selected>' in html

    def test_toggle_completes_and_reopens(self, user_client, user):
        todo = make_todo(user, due_at=timezone.now() - timedelta(days=1))
        url = reverse("todos:toggle", args=[todo.pk])
        user_client.post(url)
        todo.refresh_from_db()
        assert todo.status == Todo.Status.DONE and todo.completed_at is not None
        assert not todo.shows_overdue
        response = user_client.post(url, HTTP_HX_REQUEST="true")
        todo.refresh_from_db()
        assert todo.status == Todo.Status.OPEN and todo.completed_at is None
        assert todo.shows_overdue, "reopened and still past due"
        assert f'id="todo-{todo.pk}"' in response.content.decode()

    def test_toggle_is_post_only(self, user_client, user):
        todo = make_todo(user)
        assert user_client.get(reverse("todos:toggle", args=[todo.pk])).status_code == 405

    def test_delete_asks_first_then_deletes(self, user_client, user):
        todo = make_todo(user)
        url = reverse("todos:delete", args=[todo.pk])
        page = user_client.get(url)
        assert page.status_code == 200 and "Delete this todo?" in page.content.decode()
        assert Todo.objects.filter(pk=todo.pk).exists()
        response = user_client.post(url)
        assert response.status_code == 302
        assert not Todo.objects.filter(pk=todo.pk).exists()

    def test_delete_with_htmx_returns_an_empty_row_and_the_message(self, user_client, user):
        todo = make_todo(user, title="Old")
        response = user_client.post(reverse("todos:delete", args=[todo.pk]), HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert response.status_code == 200
        assert all(oob for _, oob in top_level_elements(html))  # nothing in the row's place
        assert "Deleted “Old”" in html

    def test_clear_done_deletes_only_own_done_todos(self, user_client, user, other_user):
        make_todo(user, title="open")
        make_todo(user, title="done", status=Todo.Status.DONE)
        make_todo(other_user, title="theirs", status=Todo.Status.DONE)
        user_client.post(reverse("todos:clear_done"))
        assert list(Todo.objects.values_list("title", flat=True).order_by("title")) == [
            "open",
            "theirs",
        ]

    @pytest.mark.parametrize(
        "next_url", ["https://evil.example/phish", "//evil.example/", "http:/\\evil.example"]
    )
    def test_next_redirects_stay_on_this_site(self, user_client, user, next_url):
        todo = make_todo(user)
        response = user_client.post(reverse("todos:toggle", args=[todo.pk]), {"next": next_url})
        assert response.status_code == 302 and response.url == LIST

    def test_next_within_the_site_keeps_the_filters(self, user_client, user):
        todo = make_todo(user)
        response = user_client.post(
            reverse("todos:toggle", args=[todo.pk]), {"next": "/?status=open&sort=due"}
        )
        assert response.url == "/?status=open&sort=due"


class TestList:
    @pytest.fixture
    def todos(self, user, other_user):
        now = timezone.now()
        work = Category.objects.create(user=user, name="Work")
        return {
            "report": make_todo(
                user,
                title="Write report",
                notes="quarterly numbers",
                category=work,
                priority=Todo.Priority.HIGH,
                due_at=now + timedelta(hours=3),
            ),
            "gym": make_todo(
                user, title="Gym", priority=Todo.Priority.LOW, due_at=now + timedelta(days=3)
            ),
            "taxes": make_todo(user, title="Taxes", due_at=now - timedelta(days=1)),
            "done": make_todo(user, title="Old task", status=Todo.Status.DONE),
            "theirs": make_todo(other_user, title="Not mine"),
            "work": work,
        }

    def titles(self, client, **params) -> list[str]:
        """The titles the page shows, read from its HTML."""
        response = client.get(LIST, params)
        assert response.status_code == 200
        return [
            html.unescape(title)
            for title in re.findall(r'class="todo-title"[^>]*>([^<]*)<', response.content.decode())
        ]

    def test_shows_only_own_todos(self, user_client, todos):
        assert "Not mine" not in self.titles(user_client)
        assert len(self.titles(user_client)) == 4

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"status": "done"}, {"Old task"}),
            ({"status": "open"}, {"Write report", "Gym", "Taxes"}),
            ({"priority": "high"}, {"Write report"}),
            ({"priority": "low"}, {"Gym"}),
            ({"due": "overdue"}, {"Taxes"}),
            ({"due": "week"}, {"Write report", "Gym"}),
            ({"q": "QUARTERLY"}, {"Write report"}),
            ({"q": "gym"}, {"Gym"}),
            ({"category": "none"}, {"Gym", "Taxes", "Old task"}),
        ],
    )
    def test_filters(self, user_client, todos, params, expected):
        assert set(self.titles(user_client, **params)) == expected

    def test_category_filter(self, user_client, todos):
        assert self.titles(user_client, category=todos["work"].pk) == ["Write report"]

    def test_due_today_is_the_users_day(self, client, make_user):
        user = make_user("late", time_zone="Pacific/Kiritimati")  # UTC+14
        client.force_login(user)
        local_now = timezone.localtime(timezone.now(), zoneinfo.ZoneInfo("Pacific/Kiritimati"))
        end_of_day = local_now.replace(hour=23, minute=59, second=0, microsecond=0)
        tomorrow = end_of_day + timedelta(minutes=2)
        make_todo(user, title="tonight", due_at=end_of_day)
        make_todo(user, title="tomorrow", due_at=tomorrow)
        assert self.titles(client, due="today") == ["tonight"]

    @pytest.mark.parametrize(
        "params",
        [
            {"sort": "password"},
            {"sort": "user__password"},
            {"sort": "-id; DROP TABLE todos_todo"},
            {"status": "deleted"},
            {"priority": "urgent"},
            {"due": "yesterday"},
            {"category": "abc"},
            {"category": "999999"},
            {"page": "-1"},
            {"page": "9999"},
            {"page": "x"},
            {"q": "%" * 500},
        ],
    )
    def test_unknown_values_are_ignored_never_a_500(self, user_client, todos, params):
        response = user_client.get(LIST, params)
        assert response.status_code == 200

    def test_another_users_category_id_filters_nothing(self, user_client, todos, other_user):
        theirs = Category.objects.create(user=other_user, name="Theirs")
        assert len(self.titles(user_client, category=theirs.pk)) == 4

    @pytest.mark.parametrize(
        ("sort", "first"),
        [
            ("due", "Taxes"),
            ("-due", "Gym"),
            ("priority", "Write report"),
            ("-priority", "Gym"),
            ("created", "Old task"),
            ("-created", "Write report"),
        ],
    )
    def test_sorting(self, user_client, todos, sort, first):
        assert self.titles(user_client, sort=sort)[0] == first

    def test_overdue_todos_are_marked(self, user_client, todos):
        html = user_client.get(LIST).content.decode()
        taxes = html.split(f'id="todo-{todos["taxes"].pk}"')[1].split("</li>")[0]
        assert "Overdue" in taxes

    def test_overdue_is_open_and_past_due_at_the_moment_of_reading(self, user_client, user):
        now = timezone.now()
        make_todo(user, title="late", due_at=now - timedelta(minutes=1))
        make_todo(user, title="done late", due_at=now - timedelta(days=1), status="done")
        make_todo(user, title="undated")
        soon = make_todo(user, title="soon", due_at=now + timedelta(minutes=1))
        assert self.titles(user_client, due="overdue") == ["late"]
        Todo.objects.filter(pk=soon.pk).update(due_at=now - timedelta(seconds=1))
        assert set(self.titles(user_client, due="overdue")) == {"late", "soon"}

    def test_pagination(self, user_client, user):
        Todo.objects.bulk_create(Todo(user=user, title=f"t{i}") for i in range(30))
        first = user_client.get(LIST)
        second = user_client.get(LIST, {"page": 2})
        assert len(first.context["page"]) == 25 and len(second.context["page"]) == 5
        assert "Page 1 of 2" in first.content.decode()

    def test_htmx_filter_request_returns_only_the_list(self, user_client, todos):
        response = user_client.get(
            LIST, {"status": "done"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="todo-list"
        )
        html = response.content.decode()
        assert html.lstrip().startswith('<section id="todo-list"') and "<html" not in html

    def test_the_cached_filter_choices_and_links_show_each_page_its_own_state(self, user_client):
        # Fragments are cached per process by what they show: one page's must not leak.
        high = user_client.get(LIST, {"priority": "high", "sort": "due"}).content.decode()
        low = user_client.get(LIST, {"priority": "low"}).content.decode()
        categories = user_client.get(reverse("todos:categories")).content.decode()
        assert '<option value="high" selected>' in high and '<option value="due" selected>' in high
        assert '<option value="low" selected>' in low and "Clear filters" in low
        assert '<option value="high" selected>' not in low
        assert '<option value="due" selected>' not in low
        todos_link = f'<a href="{LIST}" aria-current="page">'
        assert todos_link in low and todos_link not in categories
        assert 'aria-current="page">' in categories

    def test_anonymous_users_are_sent_to_log_in(self, client):
        response = client.get(LIST)
        assert response.status_code == 302 and response.url == "/accounts/login/?next=/"


class TestCategories:
    def test_create_rename_delete_keeps_todos(self, user_client, user):
        user_client.post(reverse("todos:categories"), {"name": "Errands"})
        category = Category.objects.get(user=user)
        todo = make_todo(user, category=category)
        user_client.post(reverse("todos:category_edit", args=[category.pk]), {"name": "Shopping"})
        category.refresh_from_db()
        assert category.name == "Shopping"
        page = user_client.get(reverse("todos:category_delete", args=[category.pk]))
        assert "will be kept" in page.content.decode()
        user_client.post(reverse("todos:category_delete", args=[category.pk]))
        todo.refresh_from_db()
        assert todo.category is None
        assert not Category.objects.exists()

    def test_the_list_shows_a_category_change_at_once(self, user_client, user):
        # The list reads the user's categories from the cache; every change drops them.
        def filter_choices() -> str:
            html = user_client.get(LIST).content.decode()
            return html.split('id="filter-category"')[1].split("</select>")[0]

        assert "Errands" not in filter_choices()
        user_client.post(reverse("todos:categories"), {"name": "Errands"})
        assert "Errands" in filter_choices()
        category = Category.objects.get(user=user)
        user_client.post(reverse("todos:category_edit", args=[category.pk]), {"name": "Chores"})
        assert "Chores" in filter_choices() and "Errands" not in filter_choices()
        user_client.post(reverse("todos:category_delete", args=[category.pk]))
        assert "Chores" not in filter_choices()

    def test_names_are_unique_per_user_ignoring_case(self, user_client, user, other_user):
        Category.objects.create(user=other_user, name="Work")
        assert user_client.post(reverse("todos:categories"), {"name": "Work"}).status_code == 302
        response = user_client.post(reverse("todos:categories"), {"name": " work "})
        assert response.status_code == 400
        assert "already have a category" in response.content.decode()

    def test_too_long_name(self, user_client):
        response = user_client.post(reverse("todos:categories"), {"name": "c" * 51})
        assert response.status_code == 400
        assert "at most 50 characters" in response.content.decode()


def test_state_changes_without_csrf_token_are_refused(client, user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    todo = make_todo(user)
    for url in [
        CREATE,
        reverse("todos:toggle", args=[todo.pk]),
        reverse("todos:delete", args=[todo.pk]),
        reverse("todos:clear_done"),
        reverse("todos:categories"),
    ]:
        assert strict.post(url, {"title": "x", "name": "x", "priority": 2}).status_code == 403, url
    todo.refresh_from_db()
    assert todo.status == Todo.Status.OPEN
    assert Todo.objects.count() == 1


def test_the_admin_filters_and_marks_overdue_todos(admin_client, user):
    now = timezone.now()
    make_todo(user, title="late", due_at=now - timedelta(hours=1))
    make_todo(user, title="done late", due_at=now - timedelta(hours=1), status=Todo.Status.DONE)
    make_todo(user, title="undated")
    changelist = reverse("admin:todos_todo_changelist")

    def shown(**params):
        response = admin_client.get(changelist, params)
        assert response.status_code == 200
        return response, {todo.title for todo in response.context["cl"].result_list}

    page, overdue = shown(overdue="yes")
    assert overdue == {"late"}
    assert page.content.decode().count('alt="True"') == 1  # the overdue column
    assert shown(overdue="no")[1] == {"done late", "undated"}
