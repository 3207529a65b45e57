import csv
import io

import pytest
from django.urls import reverse

from todos.export import spreadsheet_safe
from todos.models import Category, Todo

pytestmark = pytest.mark.django_db


def download(client, **params) -> tuple[object, list[list[str]]]:
    response = client.get(reverse("todos:export"), params)
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")  # BOM: spreadsheets read the file as UTF-8
    return response, list(csv.reader(io.StringIO(body[1:])))


def test_exports_only_own_todos_as_utf8_csv(user_client, user, other_user):
    home = Category.objects.create(user=user, name="Home")
    Todo.objects.create(user=user, title="Café crème ☕", notes="line1\nline2", category=home)
    Todo.objects.create(user=other_user, title="Not mine")
    response, rows = download(user_client)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="todos-')
    assert rows[0][:5] == ["Title", "Notes", "Status", "Priority", "Category"]
    assert rows[1][:5] == ["Café crème ☕", "line1\nline2", "open", "Normal", "Home"]
    assert len(rows) == 2


@pytest.mark.parametrize(
    "payload", ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"]
)
def test_formula_injection_is_escaped(user_client, user, payload):
    Todo.objects.create(user=user, title=payload, notes=payload)
    _, rows = download(user_client)
    assert rows[1][0] == "'" + payload and rows[1][1] == "'" + payload


def test_harmless_values_are_untouched():
    assert spreadsheet_safe("Buy 2 apples") == "Buy 2 apples"
    assert spreadsheet_safe("") == ""


def test_export_follows_the_list_filters(user_client, user):
    Todo.objects.create(user=user, title="open one")
    Todo.objects.create(user=user, title="done one", status=Todo.Status.DONE)
    _, rows = download(user_client, status="done")
    assert [row[0] for row in rows[1:]] == ["done one"]
