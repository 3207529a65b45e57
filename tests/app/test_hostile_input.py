"""Hostile input on every form and every GET parameter of every URL pattern (issue 17).

The URL patterns are walked as the isolation test walks them. A signed-in user with her
own todo, category and notification, in a time zone at either end of the world, sends a
corpus Hypothesis generates: extreme dates, NUL, lone surrogates, 1 MB strings, negative
and huge numbers, unknown choices, markup. The forms are the ones the pages themselves
render (every `<form method="post">` and its fields). Never a 500, and nothing of any
other user changes. Bounded by `max_examples` (about a minute on the 2-core machine).
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import quote_from_bytes, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.models import Notification
from tests.app.test_isolation import ALL_URLS, fill
from todos.models import Category, Todo

pytestmark = pytest.mark.django_db

ZONES = ["Etc/GMT+12", "Etc/GMT-14", "Pacific/Kiritimati", "Pacific/Chatham", "UTC", ""]
# Parameters the views read, and a few they do not.
PARAMS = [
    "q", "status", "category", "priority", "due", "sort", "page", "next", "o", "p", "e",
    "all", "_changelist_filters", "due_at__gte", "id__exact", "user__id__exact", "unknown",
]  # fmt: skip
EXTREMES = [
    "",
    "\x00",
    "milk\x00",
    "\ud800",
    "a\udfffb",
    "x" * 1_000_000,
    "9" * 5000,
    "-1",
    "0",
    "-9223372036854775809",
    "9223372036854775808",
    "1e309",
    "NaN",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "10000-01-01T00:00",
    "0000-00-00T00:00",
    "-0001-01-01T00:00",
    "1899-12-31T23:59",
    "2026-02-30T10:00",
    "custom",
    "1d",
    "none",
    "unknown-choice",
    "//evil.example/",
    "https://evil.example/",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "\r\nSet-Cookie: x=1",
    "💥" * 100,
]


def local_datetime(moment) -> str:
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment:%H:%M}"


values = st.one_of(
    st.sampled_from(EXTREMES),
    st.datetimes().map(local_datetime),
    st.integers(-(2**80), 2**80).map(str),
    st.text(max_size=40),
)


def encode(pairs: list[tuple[str, str]]) -> str:
    """URL-encoded as a browser would, lone surrogates kept as the bytes that carry them."""

    def one(text: str) -> str:
        return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")

    return "&".join(f"{one(name)}={one(value)}" for name, value in pairs)


class Forms(HTMLParser):
    """The POST forms of a page: (action, {field name: [valid values]})."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, dict[str, list[str]]]] = []
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self.forms.append((attrs.get("action") or "", {}))
        elif self.forms and tag in ("input", "textarea", "select", "button") and attrs.get("name"):
            self.forms[-1][1].setdefault(attrs["name"], []).append(attrs.get("value") or "")
            self._select = attrs["name"] if tag == "select" else None
        elif self.forms and tag == "option" and self._select:
            self.forms[-1][1][self._select].append(attrs.get("value") or "")


@pytest.fixture
def mallory(make_user, client):
    """The attacker, with objects of her own so that her forms are all rendered."""
    user = make_user("mallory")
    category = Category.objects.create(user=user, name="Mine")
    todo = Todo.objects.create(user=user, title="Mine", category=category)
    Notification.objects.create(user=user, kind="welcome", title="Hi")
    client.force_login(user)
    return SimpleValues(user, {"pk": str(todo.pk), "category": str(category.pk)})


class SimpleValues:
    def __init__(self, user, ids):
        self.user = user
        self.ids = ids


@pytest.fixture
def victim(make_user):
    """Another user whose data no request of mallory's may change."""
    user = make_user("victim")
    category = Category.objects.create(user=user, name="Private")
    Todo.objects.create(user=user, title="Private", category=category)
    Notification.objects.create(user=user, kind="welcome", title="Hi")
    return user


def others_snapshot(user) -> tuple:
    return (
        list(Todo.objects.filter(user=user).values_list().order_by("pk")),
        list(Category.objects.filter(user=user).values_list().order_by("pk")),
        list(Notification.objects.filter(user=user).values_list().order_by("pk")),
        list(type(user).objects.filter(pk=user.pk).values_list()),
    )


def url_values(mallory) -> dict[str, str]:
    from tests.app.test_isolation import base_values

    return base_values(int(mallory.ids["pk"])) | {"pk": mallory.ids["pk"]}


def concrete_urls(mallory) -> list[str]:
    return sorted({fill(route, url_values(mallory)) for route, _ in ALL_URLS})


def answer(client, method: str, url: str, body: str = "", htmx: bool = False):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    if method == "get":
        response = client.get(f"{url}?{body}" if body else url, **headers)
    else:
        content_type = "application/x-www-form-urlencoded"
        response = client.post(url, body, content_type=content_type, **headers)
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)  # a stream that breaks off raises here
    return response


def sign_in_as(client, mallory, zone: str) -> None:
    type(mallory.user).objects.filter(pk=mallory.user.pk).update(time_zone=zone)
    client.force_login(mallory.user)


HYPOTHESIS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same corpus every run: a failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@HYPOTHESIS
@given(data=st.data())
def test_every_get_parameter_of_every_url_takes_hostile_values(client, mallory, victim, data):
    before = others_snapshot(victim)
    urls = concrete_urls(mallory)
    url = data.draw(st.sampled_from(urls), label="url")
    sign_in_as(client, mallory, data.draw(st.sampled_from(ZONES), label="zone"))
    names = st.one_of(st.sampled_from(PARAMS), st.text(max_size=10))
    pairs = data.draw(st.lists(st.tuples(names, values), min_size=1, max_size=4), label="params")
    response = answer(client, "get", url, encode(pairs), htmx=data.draw(st.booleans()))
    assert response.status_code != 500, (url, pairs)
    assert others_snapshot(victim) == before


@pytest.fixture
def page_forms(client, mallory) -> list[tuple[str, tuple]]:
    """Every POST form the pages render to mallory, with the URL it posts to (read once,
    before any example: one may sign her out)."""
    found = []
    for url in concrete_urls(mallory):
        response = client.get(url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        parser = Forms()
        parser.feed(response.content.decode())
        for action, fields in parser.forms:
            target = urlsplit(action).path or url
            found.append((target, fields))
    return sorted({(url, tuple(sorted((k, tuple(v)) for k, v in f.items()))) for url, f in found})


@HYPOTHESIS
@given(data=st.data())
def test_every_form_takes_hostile_values(client, mallory, victim, page_forms, data):
    before = others_snapshot(victim)
    assert len(page_forms) >= 10, page_forms  # the walk found the app's forms
    url, fields = data.draw(st.sampled_from(page_forms), label="form")
    sign_in_as(client, mallory, data.draw(st.sampled_from(ZONES), label="zone"))
    pairs = []
    for name, valid in fields:
        hostile = data.draw(st.booleans(), label=f"hostile {name}")
        choices = [v for v in valid if v] or [""]
        value = data.draw(values if hostile else st.sampled_from(choices), label=name)
        pairs.append((name, value))
    response = answer(client, "post", url, encode(pairs), htmx=data.draw(st.booleans()))
    assert response.status_code != 500, (url, pairs)
    assert others_snapshot(victim) == before
