"""`invoke bench`: the app as production runs it, under load, measured.

Web: a fresh PostgreSQL database (`todo_bench` on the server of DATABASE_URL) is migrated
and seeded, static files are collected, and `app/bin/web` (gunicorn, config/gunicorn.py,
DEBUG off) serves it with `config.settings.bench`, which is production plus the limit
reference route. wrk drives each endpoint from its own process over loopback.

Worker: 100,000 todos with a reminder due are seeded, the reminder scan runs until none
is due (time and SQL statements per batch), then `app/bin/worker` delivers the emails
the scan queued to a local SMTP sink (tasks per second).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from bench import HarnessError, peer, result_json, wrk
from bench.client import (
    COUNT_QUERIES_HEADER,
    QUERIES_HEADER,
    Session,
    category_ids,
    hashed_stylesheet,
    toggle_ids,
)
from bench.processes import (
    AppProcess,
    ProcessError,
    WorkerMemory,
    answers_ok,
    tree_cpu_seconds,
)
from bench.report import LIMIT, MIX, Row, StaticFile, WebRun, WorkerRun
from ops.tools import APP_DIR, REPO_ROOT

OUTPUT_DIR = REPO_ROOT / ".dev" / "bench"
MIX_USERS_FILE = OUTPUT_DIR / "mix-users.txt"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/todo"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BENCH_SUFFIX = "_bench"  # todo -> todo_bench: each checkout's database gets its own
REDIS_DB = 13  # tests use 9, the image smoke test 12
PASSWORD = "bench-passw0rd"  # noqa: S105 (seeded users of a throwaway database)
SEED = 1
# The limit reference measured again after each endpoint: seconds of warm-up and measure.
LIMIT_CHECK_WARMUP, LIMIT_CHECK_SECONDS = 2.0, 10.0

# The web data set: users with exactly the todo counts the endpoints name, among a crowd
# of others so that every table has realistic size and spread.
WEB_USERS = {
    # prefix: (users, todos each)
    "crowd": (200, 50),
    "small": (1, 50),
    "large": (1, 500),
    "writer": (1, 200),
}
# The realistic mix: every crowd user signed in, each request a random one's, asking for
# one of the list page's variants as people use it, or writing (bench/mix.lua).
MIX_USERS = "crowd"
MIX_PATHS = (
    "/",
    "/?page=2",
    "/?status=open",
    "/?status=open&page=2",
    "/?status=done",
    "/?priority=high",
    "/?priority=low",
    "/?due=week",
    "/?due=overdue",
    "/?category=none",
    "/?q=bill",
    "/?q=passport",
    "/?sort=due",
    "/?sort=priority",
    "/?sort=-created",
)
DEFAULT_WRITE_SHARE = 0.1
# Counters of the app's metrics endpoint read around a measured run: SQL statements the
# app sent (django-prometheus), and list rows read from the cache or rendered (todos/rows.py).
STATEMENTS = "django_db_execute_total"
CACHE_HITS, CACHE_MISSES = "todo_row_cache_hits_total", "todo_row_cache_misses_total"
SCAN_USERS, SCAN_TODOS_EACH = 100, 1000  # 100,000 todos with a reminder due
SCAN_EMAIL_OPT_IN = 0.05  # about 5,000 reminder emails for the delivery benchmark
DELIVERY_TIMEOUT_SECONDS = 600


class BenchError(HarnessError):
    pass


# --- services ------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    """The bench's own database and Redis index on the servers named by the environment."""

    database_url: str
    maintenance_url: str  # the `postgres` database of the same server, to (re)create ours
    redis_url: str

    @classmethod
    def from_environment(
        cls, environ: dict[str, str], database: str = "", redis_db: int = REDIS_DB
    ) -> Services:
        database_url = environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        parts = urlsplit(database_url)
        if not database:
            # Next to the one DATABASE_URL names (todo_bench for todo), never that one.
            name = parts.path.lstrip("/") or "todo"
            database = name if name.endswith(BENCH_SUFFIX) else name + BENCH_SUFFIX
        if parts.scheme not in ("postgres", "postgresql"):
            raise BenchError(
                f"the benchmark needs PostgreSQL; DATABASE_URL is {parts.scheme}://... "
                f"(unset it to use {DEFAULT_DATABASE_URL})"
            )
        redis_parts = urlsplit(environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
        return cls(
            database_url=urlunsplit(parts._replace(path=f"/{database}")),
            maintenance_url=urlunsplit(parts._replace(path="/postgres")),
            redis_url=urlunsplit(redis_parts._replace(path=f"/{redis_db}")),
        )

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    def check_reachable(self) -> None:
        for name, url, port in (
            ("PostgreSQL", self.database_url, 5432),
            ("Redis", self.redis_url, 6379),
        ):
            parts = urlsplit(url)
            try:
                socket.create_connection((parts.hostname, parts.port or port), 3).close()
            except OSError as error:
                raise BenchError(
                    f"{name} is unreachable at {parts.hostname}:{parts.port or port} ({error}); "
                    "start it or point DATABASE_URL / REDIS_URL at one"
                ) from None

    def reset_database(self, database: str = "") -> None:
        """Drop and create the bench database: every run starts from the same rows."""
        import psycopg
        from psycopg import sql

        name = sql.Identifier(database or self.database_name)
        with psycopg.connect(self.maintenance_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(name))

    def clear_redis(self) -> None:
        """Empty the bench's own Redis index (never another): its task queue and its caches,
        so that no user, category or session cached from a previous run's rows is read."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushdb()
        finally:
            client.close()


# Variables the bench sets itself; the caller's sizing (WEB_CONCURRENCY, GUNICORN_THREADS,
# CELERY_WORKER_CONCURRENCY, ...) passes through, so other shapes can be compared.
_REPLACED = (
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "PORT",
    "GUNICORN_BIND",
    "CELERY_HEARTBEAT_DIR",
)


def app_environment(services: Services, **extra: str) -> dict[str, str]:
    """Production settings for the bench's services, as the image's processes get them."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DJANGO_") and key not in _REPLACED
    }
    return env | {
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        # Production redirects plain HTTP to HTTPS (TLS ends at the ingress); wrk speaks
        # plain HTTP on loopback, so the redirect is off. Nothing else changes.
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        # The metrics endpoint of the gunicorn master: a free port, not the default 9100
        # another process on this machine may hold.
        "METRICS_PORT": str(free_port()),
        **extra,
    }


def manage(env: dict[str, str], *args: str, app_dir: Path = APP_DIR) -> str:
    finished = subprocess.run(  # noqa: S603 (manage.py of this repo)
        [sys.executable, "manage.py", *args],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise BenchError(f"manage.py {' '.join(args)} failed:\n{finished.stdout}{finished.stderr}")
    return finished.stdout


def seed(
    env: dict[str, str], prefix: str, users: int, todos: int, *extra: str, app_dir: Path = APP_DIR
) -> None:
    manage(
        env,
        "seed",
        f"--prefix={prefix}",
        f"--users={users}",
        f"--todos={todos}",
        f"--seed={SEED}",
        f"--password={PASSWORD}",
        *extra,
        app_dir=app_dir,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- web ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    label: str
    request: wrk.Request | wrk.Mix
    session: Session | None = None  # whose cookies the query count is taken with


ENDPOINT_NAMES = (
    LIMIT,
    MIX,
    "list-50",
    "list-500",
    "list-category",
    "create",
    "complete",
    "readyz",
    "login",
)


def mix_endpoint(base_url: str, users_file: Path, write_share: float) -> Endpoint:
    users = len(users_file.read_text().splitlines())
    return Endpoint(
        MIX,
        f"realistic mix: {users} users, {len(MIX_PATHS)} list variants, {write_share:.0%} writes",
        wrk.Mix(MIX_PATHS, users_file, base_url, write_share),
    )


def endpoints(base_url: str, mix: Endpoint) -> list[Endpoint]:
    """Sign the seeded users in and describe every endpoint as wrk will request it."""
    anonymous = Session(base_url)
    small, large, writer = (Session(base_url) for _ in range(3))
    small.login("small1", PASSWORD)
    large.login("large1", PASSWORD)
    writer.login("writer1", PASSWORD)

    large_page = large.get("/")
    category = next(iter(category_ids(large_page.text)), None)
    if category is None:
        raise BenchError("the seeded user large1 shows no category on the list page")
    todo_ids = []
    for page in range(1, 9):  # the writer's 200 todos, 25 a page
        todo_ids += toggle_ids(writer.get(f"/?page={page}").text)
    if not todo_ids:
        raise BenchError("the seeded user writer1 shows no todos on the list page")

    def get(session: Session, *paths: str) -> wrk.Request:
        return wrk.Request("GET", paths, headers=session.headers())

    quick_add = urlencode({"form": "quick", "title": "Benchmark todo", "priority": "2"})
    return [
        Endpoint(
            LIMIT, "limit reference (trivial view)", get(anonymous, "/bench/limit/"), anonymous
        ),
        mix,
        # Best cases: one user asking for one page again and again, no writes.
        Endpoint("list-50", "best case: todo list, 50 todos", get(small, "/"), small),
        Endpoint(
            "list-500", "best case: todo list, 500 todos, page 10", get(large, "/?page=10"), large
        ),
        Endpoint(
            "list-category",
            "best case: todo list filtered by category",
            get(large, f"/?category={category}"),
            large,
        ),
        Endpoint(
            "create",
            "create todo (POST, htmx)",
            wrk.Request(
                "POST", ("/todos/new/",), headers=writer.headers("POST", htmx=True), body=quick_add
            ),
            writer,
        ),
        Endpoint(
            "complete",
            "complete/reopen todo (POST, htmx)",
            wrk.Request(
                "POST",
                tuple(f"/todos/{pk}/toggle/" for pk in todo_ids),
                headers=writer.headers("POST", htmx=True),
            ),
            writer,
        ),
        Endpoint("readyz", "readiness (/readyz)", get(anonymous, "/readyz"), anonymous),
        Endpoint("login", "login page, anonymous", get(anonymous, "/accounts/login/"), anonymous),
    ]


def prepare_web_data(
    services: Services, env: dict[str, str], say: Callable[[str], None], app_dir: Path = APP_DIR
) -> None:
    say(f"Preparing database {services.database_name} (drop, create, migrate, seed)...")
    services.reset_database()
    services.clear_redis()
    manage(env, "migrate", "--noinput", "-v0", app_dir=app_dir)
    for prefix, (users, todos) in WEB_USERS.items():
        seed(env, prefix, users, todos, app_dir=app_dir)
    say(f"Signing in every {MIX_USERS} user for the mix...")
    django_step(env, MIX_USERS, str(MIX_USERS_FILE), module="bench.sessions", app_dir=app_dir)
    say("Collecting static files (the manifest production serves them from)...")
    manage(env, "collectstatic", "--noinput", "-v0", app_dir=app_dir)


def gunicorn_shape(env: dict[str, str], app_dir: Path = APP_DIR) -> tuple[int, int]:
    """Workers and threads as config/gunicorn.py derives them in this environment."""
    script = (
        "import runpy; c = runpy.run_path('config/gunicorn.py'); print(c['workers'], c['threads'])"
    )
    output = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(output[0]), int(output[1])


def run_web(
    wrk_path: str,
    load: wrk.Load,
    only: tuple[str, ...],
    say: Callable[[str], None],
    write_share: float = DEFAULT_WRITE_SHARE,
    peer_dir: Path | None = None,
    app_dir: Path = APP_DIR,  # another checkout's app/ (an older commit's) to compare
) -> WebRun:
    services = Services.from_environment(dict(os.environ))
    services.check_reachable()
    port = free_port()
    env = app_environment(services, PORT=str(port), GUNICORN_BIND=f"127.0.0.1:{port}")
    prepare_web_data(services, env, say, app_dir)
    if peer_dir is not None:
        peer.prepare(peer_dir, services, say)
    run = WebRun()
    run.workers, run.threads = gunicorn_shape(env, app_dir)
    base_url = f"http://127.0.0.1:{port}"
    metrics_url = f"http://127.0.0.1:{env['METRICS_PORT']}/metrics"
    say(f"Starting gunicorn ({run.shape}) on {base_url}...")
    web_script = [str(app_dir / "bin" / "web")]
    with AppProcess("web", env, OUTPUT_DIR / "web.log", web_script, app_dir) as web:
        web.wait_until(lambda: answers_ok(f"{base_url}/readyz"), "ready (/readyz)")
        run.static = static_file(base_url)
        memory = WorkerMemory(web.pid)
        memory.start()
        limit = None

        def measured(server: AppProcess, endpoint: Endpoint, metrics: str | None) -> Row:
            row = measure(wrk_path, server_url(server), server.pid, metrics, endpoint, load, say)
            if endpoint.name != LIMIT:
                # The host's speed drifts within a run: each endpoint is compared with
                # the limit reference measured just before and just after it.
                run.limit_checks.append(check_limit(wrk_path, base_url, limit, load, say))
                row = replace(row, limit_around=sum(run.limit_checks[-2:]) / 2)
            if not server.alive():
                raise ProcessError(
                    f"{server.script} exited during {endpoint.name}; its log "
                    f"({server.log_path}):\n{server.log_tail()}"
                )
            return row

        def server_url(server: AppProcess) -> str:
            return base_url if server is web else peer_url

        try:
            mix = mix_endpoint(base_url, MIX_USERS_FILE, write_share)
            for endpoint in endpoints(base_url, mix):
                if only and endpoint.name not in only and endpoint.name != LIMIT:
                    continue
                row = measured(web, endpoint, metrics_url)
                if endpoint.name == LIMIT:
                    limit = endpoint
                    run.limit_checks.append(row.result.requests_per_second)
                run.rows.append(row)
            if peer_dir is not None:
                peer_port = free_port()
                peer_url = f"http://127.0.0.1:{peer_port}"
                say(f"Starting the peer ({peer_dir}, gunicorn -w 4) on {peer_url}...")
                with peer.server(peer_dir, services, peer_port, OUTPUT_DIR / "peer.log") as other:
                    other.wait_until(lambda: answers_ok(peer_url + peer.LOGIN), "serving")
                    for name, label, request in peer.requests(peer_url):
                        run.rows.append(measured(other, Endpoint(name, label, request), None))
        finally:
            run.memory = memory.stop()
    return run


def static_file(base_url: str) -> StaticFile:
    """How a hashed static file is served: cache headers, and SQL statements (none)."""
    session = Session(base_url)
    path = hashed_stylesheet(session.get("/accounts/login/").text)
    if path is None:
        raise BenchError("the login page links no hashed stylesheet (manifest static storage?)")
    response = session.request("GET", path, headers={COUNT_QUERIES_HEADER: "1"})
    return StaticFile(
        path=path,
        status=response.status,
        cache_control=response.headers.get("Cache-Control", ""),
        queries=int(response.headers.get(QUERIES_HEADER, "-1")),
    )


def counters(metrics_url: str) -> dict[str, float]:
    """The app's counters summed over their labels, from the metrics endpoint (all workers)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 (loopback)
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def measure(
    wrk_path: str,
    base_url: str,
    server_pid: int,
    metrics_url: str | None,  # None: a server without the app's metrics (the peer)
    endpoint: Endpoint,
    load: wrk.Load,
    say: Callable[[str], None],
) -> Row:
    request = endpoint.request
    wrk.run(wrk_path, base_url, request, load, load.warmup)
    queries = None
    if endpoint.session is not None:
        # Counted after the warm-up, on warm connections: the steady state.
        queries = endpoint.session.count_queries(
            request.method, request.paths[0], request.body, request.headers
        )
    before, cpu_before = counters(metrics_url) if metrics_url else {}, tree_cpu_seconds(server_pid)
    result = wrk.run(wrk_path, base_url, request, load, load.duration)
    after, cpu_after = counters(metrics_url) if metrics_url else {}, tree_cpu_seconds(server_pid)
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and result.requests:
        cpu_ms = (cpu_after - cpu_before) * 1000 / result.requests
    delta = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
    if queries is None and metrics_url and result.requests:
        queries = delta.get(STATEMENTS, 0.0) / result.requests  # the mean of a mixed load
    rows = delta.get(CACHE_HITS, 0.0) + delta.get(CACHE_MISSES, 0.0)
    cache_hits = delta.get(CACHE_HITS, 0.0) / rows if rows else None
    say(
        f"  {endpoint.name:<14} {result.requests_per_second:8,.0f} req/s  "
        f"p99 {result.p99_ms:7.1f} ms  {result.errors} errors "
        f"({result.socket_errors} socket/timeout)  "
        + ("" if queries is None else f"{queries:g} queries")
        + (f"  {cpu_ms:.2f} CPU ms/req" if cpu_ms is not None else "")
        + (f"  cache hits {cache_hits:.0%}" if cache_hits is not None else "")
    )
    return Row(endpoint.name, endpoint.label, result, queries, cpu_ms, cache_hits=cache_hits)


def check_limit(
    wrk_path: str, base_url: str, limit: Endpoint, load: wrk.Load, say: Callable[[str], None]
) -> float:
    """The limit reference's req/s now: a short run, between two endpoints."""
    wrk.run(wrk_path, base_url, limit.request, load, min(load.warmup, LIMIT_CHECK_WARMUP))
    result = wrk.run(
        wrk_path, base_url, limit.request, load, min(load.duration, LIMIT_CHECK_SECONDS)
    )
    say(f"  {'(limit check)':<14} {result.requests_per_second:8,.0f} req/s")
    return result.requests_per_second


# --- worker -------------------------------------------------------------------------------


class SmtpSink:
    """A local SMTP server that accepts every message and notes when it arrived."""

    def __init__(self):
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self.port = free_port()

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.arrivals.append(time.monotonic())
        return "250 Message accepted"

    def __enter__(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._controller.stop()

    @property
    def received(self) -> int:
        with self._lock:
            return len(self.arrivals)


def django_step(
    env: dict[str, str], *args: str, module: str = "bench.reminders", app_dir: Path = APP_DIR
) -> dict:
    """`python -m MODULE ARGS...` inside Django with the app's environment: its result line."""
    finished = subprocess.run(  # noqa: S603
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env | {"PYTHONPATH": os.pathsep.join([str(app_dir), str(REPO_ROOT)])},
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        command = " ".join((module, *args))
        raise BenchError(f"{command} failed:\n{finished.stdout}{finished.stderr}")
    return result_json(finished.stdout, module)


def run_worker(say: Callable[[str], None]) -> WorkerRun:
    services = Services.from_environment(dict(os.environ))
    services.check_reachable()
    with tempfile.TemporaryDirectory(prefix="todo-bench-") as state_dir, SmtpSink() as sink:
        env = app_environment(
            services,
            EMAIL_URL=f"smtp://127.0.0.1:{sink.port}",
            CELERY_HEARTBEAT_DIR=state_dir,
        )
        say(
            f"Preparing database {services.database_name} with "
            f"{SCAN_USERS * SCAN_TODOS_EACH:,} todos whose reminder is due..."
        )
        services.reset_database()
        services.clear_redis()
        manage(env, "migrate", "--noinput", "-v0")
        seed(
            env,
            "scan",
            SCAN_USERS,
            SCAN_TODOS_EACH,
            "--all-reminders-due",
            f"--email-opt-in={SCAN_EMAIL_OPT_IN}",
        )
        say("Running the reminder scan until no reminder is due...")
        scan = django_step(env, "scan")
        say(
            f"  scan: {scan['reminded']:,} reminders in {scan['seconds']:.1f} s, "
            f"{scan['batches']} batches, {scan['emails_queued']:,} emails queued"
        )
        queued = scan["emails_queued"]
        say(f"Starting app/bin/worker to deliver {queued:,} emails to a local SMTP sink...")
        with AppProcess("worker", env, OUTPUT_DIR / "worker.log") as worker:
            worker.wait_until(
                lambda: sink.received >= queued,
                f"done delivering {queued:,} emails",
                timeout=DELIVERY_TIMEOUT_SECONDS,
            )
        arrivals = sink.arrivals
        states = django_step(env, "emails")
    return WorkerRun(
        scan=scan,
        emails_queued=queued,
        emails_received=len(arrivals),
        delivery_seconds=arrivals[-1] - arrivals[0] if arrivals else 0.0,
        concurrency=int(env.get("CELERY_WORKER_CONCURRENCY") or os.cpu_count() or 1),
        email_states=states,
    )


# --- the machine ------------------------------------------------------------------------


def machine() -> str:
    """What the figures were measured on, one line: they only compare within one machine."""
    cpu_model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{date} | {os.cpu_count()} CPUs ({cpu_model}), {memory / 2**30:.1f} GiB | {system}"
