"""The harness's pieces: its services, the app's environment, and the endpoints as wrk
will send them, each answered with its expected status by the real app."""

import io
import os

import psycopg
import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.management import call_command

from bench import harness
from bench.client import Session
from todos.models import Category, Todo


def test_services_take_the_servers_from_the_environment_and_use_their_own_names():
    services = harness.Services.from_environment({
        "DATABASE_URL": "postgres://app:s%40cret@db.internal:5433/todo?sslmode=require",
        "REDIS_URL": "redis://default:t0ken@cache.internal:6380/0",
    })  # fmt: skip
    assert services.database_url == (
        "postgres://app:s%40cret@db.internal:5433/todo_bench?sslmode=require"
    )
    assert services.maintenance_url == (
        "postgres://app:s%40cret@db.internal:5433/postgres?sslmode=require"
    )
    assert services.redis_url == "redis://default:t0ken@cache.internal:6380/13"
    assert services.database_name == "todo_bench"


def test_each_checkout_benchmarks_in_a_database_of_its_own():
    def name(url):
        return harness.Services.from_environment({"DATABASE_URL": url}).database_name

    assert name("postgres://postgres@127.0.0.1:5432/todo_data") == "todo_data_bench"
    assert name("postgres://postgres@127.0.0.1:5432/todo_bench") == "todo_bench"
    assert name("postgres://postgres@127.0.0.1:5432") == "todo_bench"


def test_services_default_to_the_local_servers():
    services = harness.Services.from_environment({})
    assert services.database_url == "postgres://postgres@127.0.0.1:5432/todo_bench"
    assert services.redis_url == "redis://127.0.0.1:6379/13"


def test_services_refuse_anything_but_postgresql():
    with pytest.raises(harness.BenchError, match="needs PostgreSQL"):
        harness.Services.from_environment({"DATABASE_URL": "sqlite:///db.sqlite3"})


def test_unreachable_services_are_named():
    services = harness.Services.from_environment({"DATABASE_URL": "postgres://u@127.0.0.1:1/x"})
    with pytest.raises(harness.BenchError, match=r"PostgreSQL is unreachable at 127\.0\.0\.1:1 "):
        services.check_reachable()


@pytest.mark.slow
def test_reset_database_creates_a_fresh_database_each_time():
    name = f"todo_bench_selftest_{os.getpid()}"
    services = harness.Services.from_environment(
        {"DATABASE_URL": os.environ["DATABASE_URL"]}, database=name
    )
    try:
        services.reset_database()
        with psycopg.connect(services.database_url, autocommit=True) as connection:
            connection.execute("CREATE TABLE leftover (id int)")
        services.reset_database()
        with psycopg.connect(services.database_url) as connection:
            tables = connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
        assert tables == (0,)
    finally:
        with psycopg.connect(services.maintenance_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_clear_redis_empties_its_own_index_and_no_other():
    services = harness.Services.from_environment({"REDIS_URL": os.environ["REDIS_URL"]})
    client = redis.Redis.from_url(services.redis_url)
    other = redis.Redis.from_url(os.environ["REDIS_URL"])  # the tests' own index
    assert services.redis_url != os.environ["REDIS_URL"]
    client.rpush("celery", "stale task")
    client.set("todo:1:user:1", "a previous run's user")
    other.set("bench-selftest-keep", "1")
    try:
        services.clear_redis()
        assert client.dbsize() == 0
        assert other.get("bench-selftest-keep") == b"1"
    finally:
        other.delete("bench-selftest-keep")
        client.close()
        other.close()


def test_the_app_gets_production_settings_for_the_bench_services(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "true")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.local")
    monkeypatch.setenv("EMAIL_URL", "smtp://mail.example.com")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "2")
    services = harness.Services.from_environment({})
    env = harness.app_environment(services, PORT="8123")
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.bench"
    assert "DJANGO_DEBUG" not in env
    assert "EMAIL_URL" not in env
    assert env["DATABASE_URL"] == services.database_url
    assert env["REDIS_URL"] == services.redis_url
    assert env["DJANGO_SECURE_SSL_REDIRECT"] == "false"
    assert len(env["DJANGO_SECRET_KEY"]) >= 50
    assert env["PORT"] == "8123"
    assert env["METRICS_PORT"] != "9100"
    # The caller's sizing goes through, so other worker counts can be compared.
    assert harness.gunicorn_shape(env) == (3, 2)


def test_gunicorn_shape_derives_from_the_cpus_by_default(monkeypatch):
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    env = harness.app_environment(harness.Services.from_environment({}))
    assert harness.gunicorn_shape(env) == (os.cpu_count() + 1, 1)


@pytest.fixture
def seeded_site(live_server, settings):
    """The seeded users the endpoints use, on a live server with the bench URLconf."""
    settings.BENCHMARK = True
    settings.ROOT_URLCONF = "config.bench"
    for prefix, (users, todos) in harness.WEB_USERS.items():
        if prefix != "crowd":
            call_command(
                "seed", prefix=prefix, users=users, todos=todos, password=harness.PASSWORD,
                stdout=io.StringIO(),
            )  # fmt: skip
    return live_server.url


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_endpoint_answers_what_wrk_expects(seeded_site, tmp_path):
    (tmp_path / "users.txt").write_text("s c 1\n")
    mix = harness.mix_endpoint(seeded_site, tmp_path / "users.txt", 0.1)
    endpoints = harness.endpoints(seeded_site, mix)
    assert tuple(endpoint.name for endpoint in endpoints) == harness.ENDPOINT_NAMES
    writer = get_user_model().objects.get(username="writer1")
    todos_before = Todo.objects.filter(user=writer).count()
    for endpoint in endpoints:
        request = endpoint.request
        if endpoint is mix:
            continue  # test_the_mix_users_are_signed_in_and_may_write
        for path in request.paths[:3]:
            response = Session(seeded_site).request(
                request.method, path, request.body, request.headers
            )
            assert response.status == request.expect, (endpoint.name, path, response.text[:500])
    assert Todo.objects.filter(user=writer).count() == todos_before + 1

    by_name = {endpoint.name: endpoint for endpoint in endpoints}
    complete = by_name["complete"].request.paths
    assert len(complete) == len(set(complete)) == 200  # every todo of the writer
    large = get_user_model().objects.get(username="large1")
    category = by_name["list-category"].request.paths[0].removeprefix("/?category=")
    assert Category.objects.filter(user=large, pk=int(category)).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_mix_users_are_signed_in_and_may_write(live_server, settings, tmp_path):
    """What bench/mix.lua sends, from the file bench/sessions.py writes, as the app sees it."""
    from bench.sessions import sign_in

    settings.BENCHMARK = True
    call_command("seed", prefix="mixer", users=2, todos=5, stdout=io.StringIO())
    users_file = tmp_path / "users.txt"
    assert sign_in("mixer", users_file) == {"users": 2}
    lines = [line.split() for line in users_file.read_text().splitlines()]
    for (session, csrf, todo_ids), user in zip(
        lines, get_user_model().objects.filter(username__startswith="mixer").order_by("pk"),
        strict=True,
    ):  # fmt: skip
        assert set(todo_ids.split(",")) == {
            str(pk) for pk in Todo.objects.filter(user=user).values_list("pk", flat=True)
        }
        browser = Session(live_server.url, {"sessionid": session, "csrftoken": csrf})
        for path in harness.MIX_PATHS:
            assert browser.get(path).status == 200, path
        writes = {
            "/todos/new/": "form=quick&title=Mixed+todo&priority=2",
            f"/todos/{todo_ids.split(',')[0]}/toggle/": "",
        }
        for path, body in writes.items():
            headers = browser.headers("POST", htmx=True)
            assert browser.request("POST", path, body, headers).status == 200, path
        assert Todo.objects.filter(user=user).count() == 6


def test_the_peer_gets_its_own_database_and_the_bench_servers_in_its_settings_names(tmp_path):
    from bench import peer

    services = harness.Services.from_environment({
        "DATABASE_URL": "postgres://app:s3cret@db.internal:5433/todo",
        "REDIS_URL": "redis://cache.internal:6380/0",
    })  # fmt: skip
    env = peer.environment(services, port=8123)
    assert (env["DB_HOST"], env["DB_PORT"], env["DB_NAME"]) == (
        "db.internal",
        "5433",
        "todo_bench_peer",
    )
    assert (env["DB_USER"], env["DB_PASSWORD"]) == ("app", "s3cret")
    assert (env["REDIS_HOST"], env["REDIS_PORT"], env["TODO_BACKEND_PORT"]) == (
        "cache.internal", "6380", "8123",
    )  # fmt: skip
    assert env["IS_DEBUG"] == "False"
    with pytest.raises(peer.PeerError, match=r"\.venv/bin/python is missing"):
        peer.python(tmp_path)
