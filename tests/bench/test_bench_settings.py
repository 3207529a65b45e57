"""The bench settings are production plus the limit route and the query counter, and
production never routes or loads either."""

import importlib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve

from tests.processes import APP_DIR
from todos.models import Todo

COUNTER = "config.bench.QueryCountMiddleware"


def settings_module(name: str) -> dict:
    module = importlib.import_module(f"config.settings.{name}")
    return {key: getattr(module, key) for key in dir(module) if key.isupper()}


def test_bench_settings_are_production_plus_the_route_and_the_counter():
    production, bench = settings_module("production"), settings_module("bench")
    differences = {key for key in production.keys() | bench.keys()
                   if production.get(key) != bench.get(key)}  # fmt: skip
    assert differences == {"ROOT_URLCONF", "MIDDLEWARE", "BENCHMARK", "STATIC_ROOT"}
    assert bench["ROOT_URLCONF"] == "config.bench"
    assert bench["STATIC_ROOT"] == APP_DIR.parent / ".dev" / "bench" / "staticfiles"
    assert bench["MIDDLEWARE"] == [COUNTER, *production["MIDDLEWARE"]]
    assert bench["DEBUG"] is False


def test_production_neither_routes_nor_loads_the_bench_module():
    production = settings_module("production")
    assert production["ROOT_URLCONF"] == "config.urls"
    assert COUNTER not in production["MIDDLEWARE"]
    assert "BENCHMARK" not in production
    with pytest.raises(Resolver404):
        resolve("/bench/limit/", urlconf="config.urls")
    # Only the bench settings name the bench module: nothing else can pull it in.
    users = sorted(
        str(path.relative_to(APP_DIR))
        for path in APP_DIR.rglob("*.py")
        if re.search(r"config[./]bench\b|from config import bench", path.read_text())
        and path != APP_DIR / "config" / "bench.py"
    )
    assert users == ["config/settings/bench.py"]


@pytest.mark.parametrize("path", ["/", "/todos/new/", "/accounts/login/", "/notifications/"])
def test_the_bench_urlconf_serves_every_page_of_the_site(path):
    assert resolve(path, urlconf="config.bench").func == resolve(path, urlconf="config.urls").func


@pytest.fixture
def bench_client(client, settings):
    bench = settings_module("bench")
    settings.ROOT_URLCONF = bench["ROOT_URLCONF"]
    settings.MIDDLEWARE = bench["MIDDLEWARE"]
    return client


@pytest.mark.django_db
def test_the_limit_view_does_no_queries(bench_client):
    response = bench_client.get("/bench/limit/", HTTP_X_BENCH_COUNT_QUERIES="1")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["X-Bench-Queries"] == "0"
    assert bench_client.post("/bench/limit/").status_code == 405


@pytest.mark.django_db
def test_the_counter_reports_every_statement_of_the_request(bench_client, user):
    Todo.objects.bulk_create(Todo(user=user, title=f"todo {n}") for n in range(30))
    bench_client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = bench_client.get("/", HTTP_X_BENCH_COUNT_QUERIES="1")
    assert response.status_code == 200
    assert int(response["X-Bench-Queries"]) == len(captured.captured_queries) > 0


@pytest.mark.django_db
def test_the_counter_stays_out_of_the_way_unless_asked(bench_client, user):
    bench_client.force_login(user)
    response = bench_client.get("/")
    assert response.status_code == 200
    assert "X-Bench-Queries" not in response
