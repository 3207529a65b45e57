"""Issue 17, finding 2: a NUL byte in a search was a 500 (PostgreSQL refuses NUL in text),
and in the export a 200 whose download broke off. Query strings and form bodies must be
UTF-8 text without NUL: a 400 before any view runs, never a 500 or a broken stream."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import reverse

from core.text_input import TextInputMiddleware, text_problem
from todos.models import Todo

pytestmark = pytest.mark.django_db

NUL, LONE_SURROGATE, OVERLONG_NUL = "%00", "%ED%A0%80", "%C0%80"


@pytest.mark.parametrize("value", [NUL, LONE_SURROGATE, OVERLONG_NUL, "abc%FF"])
@pytest.mark.parametrize("url", ["/", "/todos/export.csv", "/notifications/", "/admin/todos/todo/"])
def test_query_parameters_that_are_not_text_get_a_400(admin_client, url, value):
    response = admin_client.get(f"{url}?q={value}")
    assert response.status_code == 400
    assert not getattr(response, "streaming", False)


def test_a_parameter_name_counts_too(user_client):
    assert user_client.get("/?%00=1").status_code == 400


def test_real_text_is_searched_as_before(user_client, user):
    Todo.objects.create(user=user, title="Café ☕ 𝄞")
    response = user_client.get("/", {"q": "☕ 𝄞"})
    assert response.status_code == 200 and "Café" in response.content.decode()


@pytest.mark.parametrize("value", [NUL, LONE_SURROGATE])
def test_form_fields_that_are_not_text_get_a_400_and_nothing_is_saved(user_client, value):
    body = f"title=milk{value}&priority=2"
    response = user_client.post(
        reverse("todos:create"), body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert not Todo.objects.exists()


@pytest.mark.parametrize(
    ("encoded", "problem"),
    [
        (b"q=abc", None),
        (b"q=a+b&c=%E2%98%95", None),
        (b"q=%00", "contains a NUL character"),
        (b"q=\x00", "contains a NUL character"),
        (b"q=%ED%A0%80", "is not UTF-8 text"),
        (b"q=\xff", "is not UTF-8 text"),
    ],
)
def test_text_problem(encoded, problem):
    assert text_problem(encoded) == problem


def test_raw_bytes_in_the_query_string_are_read_as_django_reads_them():
    """A server hands raw bytes over as ISO-8859-1 in QUERY_STRING (PEP 3333)."""
    request = RequestFactory().get("/")
    request.META["QUERY_STRING"] = "q=caf\xc3\xa9"  # UTF-8 "café", as gunicorn passes it
    assert TextInputMiddleware(lambda r: "served")(request) == "served"
