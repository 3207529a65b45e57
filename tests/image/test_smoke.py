"""The image as the cluster runs it; `invoke image.smoke` runs this file (docs/image.md).

One stack for the module: the runtime image (built here unless --smoke-image names one), a
PostgreSQL database and a Redis index of its own, migrate run twice, then web, worker and beat
started together with the production pod's security context (--read-only, --tmpfs /tmp,
--cap-drop ALL, no new privileges, the image's own user) on the host network. The tests run in
file order: the ones that stop processes come last. Without DOCKER_HOST (or --smoke, which the
task passes) they are skipped, so a plain `invoke test` needs no Docker engine.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ops import image
from ops.tools import APP_DIR, REPO_ROOT
from tests.image.conftest import APP_UID, DEPENDENCY_STEP
from tests.processes import free_port, wait_for

GRACEFUL_TIMEOUT_SECONDS = 25  # GUNICORN_GRACEFUL_TIMEOUT's default (docs/contract.md)
# Beat's reminder scan runs every minute from its start; the email goes out right after.
REMINDER_TIMEOUT_SECONDS = 120
# What a process that writes outside /tmp logs under the read-only root filesystem.
WRITE_ERRORS = re.compile(r"Read-only file system|Permission denied|\[Errno (30|13)\]")


def option(request, name: str):
    # default: these options exist only when tests/image/conftest.py loaded before parsing.
    return request.config.getoption(f"smoke_{name}", default=None)


@pytest.fixture(scope="module")
def docker(request) -> str:
    """The docker CLI with an engine answering; else skip (a plain run) or fail (--smoke)."""
    required = request.config.getoption("smoke", default=False) or option(request, "image")
    if not (required or os.environ.get("DOCKER_HOST")):
        pytest.skip("DOCKER_HOST is not set: `invoke image.smoke` runs these on a Docker engine")
    cli = shutil.which("docker")
    answer = cli and subprocess.run(
        [cli, "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if not answer or answer.returncode != 0:
        said = (answer.stderr.strip().splitlines() or ["?"])[-1] if answer else "no docker CLI"
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        message = f"no Docker engine answers at {where} ({said}). Fix: start one, set DOCKER_HOST"
        (pytest.fail if required else pytest.skip)(message)
    return cli


def build(tag: str, target: str = "runtime", context: Path = REPO_ROOT) -> str:
    """Build as `invoke image.build` does; BuildKit's plain log."""
    result = subprocess.run(
        image.build_command(tag, target, context),
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"docker build {tag} failed:\n{log[-6000:]}"
    return log


@pytest.fixture(scope="module")
def runtime_image(docker, request) -> str:
    if given := option(request, "image"):
        return given
    build(f"{image.IMAGE_NAME}:smoke")
    return f"{image.IMAGE_NAME}:smoke"


@pytest.fixture(scope="module")
def built_here(runtime_image, request):
    """The checks of the build itself need this checkout's build, not a given image."""
    if option(request, "image"):
        pytest.skip("--smoke-image: the image was built elsewhere")


@pytest.fixture(scope="module")
def database_url(request):
    """A fresh database on the server of --smoke-postgres (default: the suite's)."""
    import psycopg

    admin_url = option(request, "postgres") or (
        urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()
    )
    name = f"todo_smoke_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable ({error}). Fix: start it or pass --postgres")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
        if not option(request, "keep"):
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_url(request):
    """--smoke-redis, an unused index, emptied afterwards; else the suite's own index."""
    import redis
    from django.conf import settings

    url = option(request, "redis") or settings.REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    if url == settings.REDIS_URL:
        client.flushdb()  # the suite's own index, as tests/processes.py empties it
    elif keys := client.dbsize():
        pytest.fail(f"Redis {url} holds {keys} keys. Fix: pass --redis with an unused index")
    yield url
    if not option(request, "keep"):
        client.flushdb()
    client.close()


@dataclass
class Containers:
    """The run's containers, on the host network; all removed at the end unless kept."""

    docker: str
    env_file: Path
    prefix: str = field(default_factory=lambda: f"todo-smoke-{secrets.token_hex(3)}")
    names: list[str] = field(default_factory=list)

    def run(self, process: str, image_tag: str, command: str, detach=True, pod=True, env=()):
        """`docker run`; `pod`: the production pod's security context. (name, result)"""
        name = f"{self.prefix}-{process}"
        self.names.append(name)
        args = [self.docker, "run", "--name", name, "--network", "host"]
        args += ["--env-file", str(self.env_file), "--tmpfs", "/tmp:rw,mode=1777"]  # noqa: S108
        args += [f"--env={variable}" for variable in env]
        if pod:  # no --user: the image's own user must be non-root
            args += ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        args += ["--detach"] * detach + [image_tag, *shlex.split(command)]
        return name, subprocess.run(args, capture_output=True, text=True, timeout=180)

    def exec(self, name: str, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.docker, "exec", name, *shlex.split(command)], capture_output=True, text=True
        )

    def logs(self, name: str) -> str:
        result = subprocess.run([self.docker, "logs", name], capture_output=True, text=True)
        return result.stdout + result.stderr

    def state(self, name: str, key: str) -> str:
        return subprocess.run(
            [self.docker, "inspect", "--format", f"{{{{.State.{key}}}}}", name],
            capture_output=True,
            text=True,
        ).stdout.strip()

    def pid1_uid(self, name: str) -> int:
        status = self.exec(name, "cat /proc/1/status").stdout
        return int(re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)[1])

    def stop(self, name: str, grace: int = GRACEFUL_TIMEOUT_SECONDS + 10) -> tuple[float, int]:
        """SIGTERM, SIGKILL after `grace` seconds: (seconds taken, exit code)."""
        started = time.monotonic()
        subprocess.run([self.docker, "stop", "--time", str(grace), name], capture_output=True)
        return time.monotonic() - started, int(self.state(name, "ExitCode"))


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET on loopback, no redirects followed: status (0 when refused), headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except OSError:
        return 0, {}, b""
    finally:
        connection.close()


def wait_until_answers(containers: Containers, name: str, port: int) -> None:
    def answers():
        if containers.state(name, "Running") != "true":
            pytest.fail(f"{name} stopped:\n{containers.logs(name)[-3000:]}")
        return get(port, "/healthz")[0] == 200

    wait_for(answers, 60, f"{name} to answer /healthz")


def django_shell(containers: Containers, name: str, code: str) -> str:
    """Python in Django's shell inside a running container: its last output line."""
    result = containers.exec(name, f"python manage.py shell --command {shlex.quote(code)}")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


@dataclass
class Stack:
    containers: Containers
    port: int
    migrations: list[subprocess.CompletedProcess]
    web: str
    worker: str
    beat: str
    todo_id: int


@pytest.fixture(scope="module")
def stack(docker, runtime_image, database_url, redis_url, tmp_path_factory, request):
    port = free_port()
    env_file = tmp_path_factory.mktemp("smoke") / "env"  # keeps the secret key off `ps`
    env_file.write_text(
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\nDATABASE_URL={database_url}\n"
        f"REDIS_URL={redis_url}\nDJANGO_ALLOWED_HOSTS=127.0.0.1,localhost\n"
        # Host networking: bind loopback only, on a port nobody uses.
        f"GUNICORN_BIND=127.0.0.1:{port}\nWEB_CONCURRENCY=2\nCELERY_WORKER_CONCURRENCY=2\n"
    )
    containers = Containers(docker, env_file)
    migrations = [
        containers.run(attempt, runtime_image, "/app/bin/migrate", detach=False)[1]
        for attempt in ("migrate", "migrate-again")
    ]
    if migrations[0].returncode != 0:
        pytest.fail(f"migrate exited {migrations[0].returncode}:\n{migrations[0].stderr[-3000:]}")
    # All three at once: beat's first reminder scan is due a minute after it starts.
    web, worker, beat = (
        containers.run(process, runtime_image, f"/app/bin/{process}")[0]
        for process in ("web", "worker", "beat")
    )
    wait_until_answers(containers, web, port)
    todo_id = django_shell(
        containers,
        web,
        "from datetime import timedelta\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from todos.models import Todo\n"
        "user = get_user_model().objects.create_user(\n"
        "    'smoke', 'smoke@example.com', None, email_reminders=True)\n"
        "print(Todo.objects.create(user=user, title='Smoke-test reminder',\n"
        "    remind_at=timezone.now() - timedelta(minutes=1)).pk)\n",
    )
    yield Stack(containers, port, migrations, web, worker, beat, int(todo_id))
    if option(request, "keep"):
        print(f"\ncontainers kept: docker rm -f {' '.join(containers.names)}")
    else:
        subprocess.run([docker, "rm", "--force", *containers.names], capture_output=True)


def test_a_code_only_change_rebuilds_without_reinstalling_the_dependencies(built_here, tmp_path):
    for name in image.CONTEXT_FILES:
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    ignore = shutil.ignore_patterns("__pycache__", "staticfiles")
    shutil.copytree(APP_DIR, tmp_path / "app", ignore=ignore)
    with (tmp_path / "app" / "config" / "urls.py").open("a") as urls:
        urls.write(f"\n# a code-only change {secrets.token_hex(4)}\n")
    log = build(f"{image.IMAGE_NAME}:smoke-rebuild", context=tmp_path)
    steps = re.findall(rf"^#(\d+) \[[^\]]+\] RUN .*{re.escape(DEPENDENCY_STEP)}", log, re.M)
    assert steps, log
    assert all(re.search(rf"^#{step} CACHED", log, re.M) for step in steps), log


def test_migrate_exits_0_and_again_when_there_is_nothing_to_apply(stack):
    first, again = stack.migrations
    assert (first.returncode, again.returncode) == (0, 0), again.stdout + again.stderr
    assert "No migrations to apply." in again.stdout


def test_web_answers_healthz_also_for_a_pod_ip_host_header(stack):
    assert get(stack.port, "/healthz", {"Host": "10.244.0.17:8000"})[0] == 200


def test_web_answers_readyz_with_the_database_and_the_broker_ok(stack):
    status, _, body = get(stack.port, "/readyz")
    assert status == 200, body
    assert json.loads(body) == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_static_files_collected_at_build_time_are_served_immutable(stack):
    manifest = stack.containers.exec(stack.web, "cat /app/staticfiles/staticfiles.json").stdout
    hashed = next(iter(json.loads(manifest)["paths"].values()))
    # As the ingress sends it: HTTPS terminated in front of the pod.
    status, headers, _ = get(stack.port, f"/static/{hashed}", {"X-Forwarded-Proto": "https"})
    assert status == 200 and "immutable" in headers.get("Cache-Control", ""), headers


def test_worker_and_beat_probes_report_alive(stack):
    for name, process in ((stack.worker, "worker"), (stack.beat, "beat")):
        probe = lambda: stack.containers.exec(name, f"/app/bin/probe {process}").returncode == 0  # noqa: B023, E731
        wait_for(probe, 90, f"/app/bin/probe {process}", interval=2)


def test_a_due_reminder_goes_beat_broker_worker_into_one_notification_with_its_email(stack):
    def email_states() -> list[str]:
        return json.loads(
            django_shell(
                stack.containers,
                stack.web,
                "import json\nfrom notifications.models import Notification\n"
                f"print(json.dumps(list(Notification.objects.filter(todo_id={stack.todo_id}, "
                "kind='reminder').values_list('email_status', flat=True))))\n",
            )
        )

    wait_for(lambda: email_states() == ["sent"], REMINDER_TIMEOUT_SECONDS, "the reminder email", 3)


def test_every_process_runs_as_the_app_user_with_a_read_only_root_and_a_writable_tmp(stack):
    for name in (stack.web, stack.worker, stack.beat):
        assert stack.containers.pid1_uid(name) == APP_UID
        assert stack.containers.exec(name, "touch /app/written-at-runtime").returncode != 0
        assert stack.containers.exec(name, "touch /tmp/written-at-runtime").returncode == 0


def test_sigterm_stops_web_after_it_answers_the_request_in_flight(stack):
    """The request's headers end only after the signal: gunicorn must answer it, then exit."""
    stopped = {}
    stopper = threading.Thread(target=lambda: stopped.update(web=stack.containers.stop(stack.web)))
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(1)  # a worker thread is reading the request now
        stopper.start()
        time.sleep(3)  # still arriving while web has SIGTERM
        sock.sendall(b"\r\n")
        response = sock.recv(1024)
    stopper.join()
    assert response.startswith(b"HTTP/1.1 200"), response
    seconds, code = stopped["web"]
    assert code == 0 and seconds < GRACEFUL_TIMEOUT_SECONDS, (code, seconds)


def test_sigterm_stops_worker_and_beat_cleanly(stack):
    for name in (stack.worker, stack.beat):
        seconds, code = stack.containers.stop(name)
        assert code == 0 and seconds < GRACEFUL_TIMEOUT_SECONDS, (name, code, seconds)


def test_no_process_tried_to_write_outside_tmp(stack):
    for name in stack.containers.names:
        logs = stack.containers.logs(name).splitlines()
        assert [line for line in logs if WRITE_ERRORS.search(line)] == [], name


def test_the_dev_target_runs_the_reload_server_and_reloads_code_synced_into_app(
    built_here, stack, request
):
    if option(request, "no_dev"):
        pytest.skip("--smoke-no-dev")
    build(f"{image.IMAGE_NAME}:smoke-dev", target="dev")
    port, containers = free_port(), stack.containers
    name, _ = containers.run(
        "dev-web",
        f"{image.IMAGE_NAME}:smoke-dev",
        "/app/bin/web --reload",
        pod=False,
        env=("HOST=127.0.0.1", f"PORT={port}"),
    )
    wait_until_answers(containers, name, port)
    assert containers.pid1_uid(name) == APP_UID
    # What Tilt's live_update does: write a changed file into /app as the app user.
    assert containers.exec(name, "sh -c 'echo \"# synced\" >> /app/config/urls.py'").returncode == 0
    wait_for(lambda: "changed: restarting" in containers.logs(name), 30, "the dev server to reload")
    wait_until_answers(containers, name, port)
    assert containers.stop(name, grace=10)[1] == 0
