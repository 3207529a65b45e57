"""`invoke bench.loop`: how long a saved file takes to be live under `invoke dev`.

In a scratch copy of the repository it starts `invoke dev` as a user does, then for each
kind of edit writes the file and polls until the served page (for a task module: the
worker's next task result) shows the change; at the end of each round, Ctrl-C and the time
until every process of the stack has exited. Each round is a fresh `invoke dev`.

The scratch copy gets a small page of its own, `/accounts/bench-loop/`, that prints a mark
from a view, a form and a service module (and sends a task that writes the task module's
mark to a file), so that each edit changes exactly one module and what it serves.

Where a Docker engine answers, the same rounds run against the dev image (the Dockerfile's
`dev` target, which Tilt builds), with web and the worker in containers of their own like
the cluster's pods: each edit is saved in the scratch copy and then copied into every
running container the way Tilt's live_update does (a tar through `docker exec`), and the
reload launcher inside takes it from there. A round ends with `docker stop` (SIGTERM to each
container's first process, as Kubernetes stops a pod) instead of Ctrl-C.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import HarnessError
from bench.report import Verdict

REPO_ROOT = Path(__file__).resolve().parent.parent
LOG = REPO_ROOT / ".dev" / "bench-loop.log"  # what `invoke dev` printed, kept for a look
START_TIMEOUT = 180  # a fresh stack on a loaded 2-core machine: imports and migrations
EDIT_TIMEOUT = 30  # an edit not live after this long counts as a miss
SETTLE_SECONDS = 2  # after an edit, for the restarted processes to finish starting
STOP_TIMEOUT = 15
# Polling costs the measured app CPU on the same cores: a page every 20 ms, a task every 0.2 s.
POLL, TASK_EVERY = 0.02, 0.2
# Issue 16's budgets, medians on a 2-core machine.
CTRL_C_BUDGET = 2.0
SIGKILL_LINES = re.compile(r"SIGKILL|rc=-9\b|timed out")

# What the scratch copy adds, once, before the stack starts: module -> appended code (the
# template's mark goes inside its content block, the only part a child template renders).
TEMPLATE_MARK = ("<h1>Log in</h1>", "<h1>Log in</h1><!-- bench-loop template-0 -->")
FIXTURES = {
    "accounts/views.py": """
BENCH_VIEW = "view-0"


def bench_loop(request):
    from django.http import HttpResponse

    from accounts import forms
    from notifications import services, tasks

    if "task" in request.GET:  # what the last task run stored; first send one more if asked
        if request.GET["task"] == "send":
            tasks.bench_loop_task.delay()
        return HttpResponse(tasks.bench_loop_result())
    return HttpResponse(f"{BENCH_VIEW} {forms.BENCH_FORM} {services.BENCH_SERVICE}")
""",
    "accounts/forms.py": '\nBENCH_FORM = "form-0"\n',
    "accounts/urls.py": """
urlpatterns += [
    path("bench-loop/", views.bench_loop),
    path("bench-loop-url-0/", views.bench_loop),
]
""",
    "notifications/services.py": '\nBENCH_SERVICE = "service-0"\n',
    "notifications/tasks.py": """
BENCH_TASK = "task-0"


def bench_loop_result(value=""):
    # Store the worker's mark, or read it: in Redis, or with the embedded defaults a file.
    import os
    from pathlib import Path

    import redis

    if url := os.environ.get("REDIS_URL"):
        store = redis.Redis.from_url(url)
        if value:
            return store.set("bench-loop-task", value)
        return (store.get("bench-loop-task") or b"").decode()
    path = Path(settings.CELERY_HEARTBEAT_DIR) / "bench-loop-task"
    if value:
        return path.write_text(value)
    return path.read_text() if path.exists() else ""


@shared_task
def bench_loop_task():
    bench_loop_result(BENCH_TASK)
""",
}


@dataclass(frozen=True)
class Edit:
    name: str  # the kind of change, as in the table
    path: str  # under app/
    mark: str  # "view" edits `view-N` into `view-N+1`
    restarts: str
    budget: float  # seconds, median


EDITS = (
    Edit("template", "templates/registration/login.html", "template", "nothing", 0.5),
    Edit("view", "accounts/views.py", "view", "web", 1.5),
    Edit("form", "accounts/forms.py", "form", "web", 1.5),
    Edit("URL", "accounts/urls.py", "bench-loop-url", "web", 1.5),
    Edit("service", "notifications/services.py", "service", "web, then Celery", 1.5),
    Edit("task", "notifications/tasks.py", "task", "web, then Celery", 3.0),
)


class LoopError(HarnessError):
    """The stack did not start or stop, or the scratch copy could not be made."""


def add_fixtures(root: Path) -> dict[Path, str]:
    """Add the bench page to the code under root/app; the files as they were, to restore."""
    originals = {root / "app" / name: (root / "app" / name).read_text() for name in FIXTURES}
    for path, text in originals.items():
        path.write_text(text + FIXTURES[path.relative_to(root / "app").as_posix()])
    template = root / "app" / EDITS[0].path
    originals.setdefault(template, template.read_text())
    template.write_text(template.read_text().replace(*TEMPLATE_MARK, 1))
    return originals


def scratch_copy(into: Path) -> Path:
    """The repository's files (tracked, and new ones not ignored) with the bench fixtures."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],  # noqa: S607
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (source := REPO_ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    add_fixtures(into)
    return into


def _get(url: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def _until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `condition` holds, polled every POLL seconds; None after `timeout`."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < timeout:
        if condition():
            return elapsed
        time.sleep(POLL)
    return None


def _descendants(root: int) -> set[int]:
    """Every process below `root` now (by parent pid), to see that each one exits."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Target:
    """The app that serves the code under root/app at base (with a Host header for an
    ingress): it tells when an edit is live."""

    def __init__(self, root: Path, base: str, host: str | None = None):
        self.root, self.base, self.host = root, base, host
        self.marks = {edit.mark: 0 for edit in EDITS}
        self.sent = 0.0

    def log_tail(self) -> str:
        return ""

    def get(self, path: str) -> tuple[int, str]:
        return _get(self.base + path, self.host)

    def page(self) -> str:
        status, body = self.get("/accounts/bench-loop/")
        return body if status == 200 else ""

    def task_result(self) -> str:
        """What the worker's last task stored, sending a new task every TASK_EVERY seconds:
        a flood of them would keep the worker busy after a restart."""
        send = time.monotonic() - self.sent >= TASK_EVERY
        self.sent = time.monotonic() if send else self.sent
        return self.get(f"/accounts/bench-loop/?task={'send' if send else 'read'}")[1]

    def serves_current_code(self) -> bool:
        """Web and the worker both run the code as it is on disk now."""
        expected = " ".join(f"{mark}-{self.marks[mark]}" for mark in ("view", "form", "service"))
        return self.page() == expected and self.task_result() == f"task-{self.marks['task']}"

    def live(self, edit: Edit) -> bool:
        mark = f"{edit.mark}-{self.marks[edit.mark]}"
        if edit.name == "template":
            return mark in self.get("/accounts/login/")[1]
        if edit.name == "URL":
            return self.get(f"/accounts/{mark}/")[0] == 200
        if edit.name == "task":
            return self.task_result() == mark
        return mark in self.page().split()

    def save(self, path: str, text: str) -> None:
        """Write the file under root/app (where the app under test reads it)."""
        (self.root / "app" / path).write_text(text)

    def edit(self, edit: Edit) -> float | None:
        """Save the next mark into the edit's module; seconds until it is live (None: never)."""
        module = self.root / "app" / edit.path
        old = f"{edit.mark}-{self.marks[edit.mark]}"
        self.marks[edit.mark] += 1
        new = f"{edit.mark}-{self.marks[edit.mark]}"
        self.save(edit.path, module.read_text().replace(old, new))
        elapsed = _until(lambda: self.live(edit), EDIT_TIMEOUT)
        time.sleep(SETTLE_SECONDS)
        if _until(self.serves_current_code, EDIT_TIMEOUT) is None:
            raise LoopError(
                f"the stack did not settle after the {edit.name} edit:\n{self.log_tail()}"
            )
        return elapsed


class Stack(Target):
    """`invoke dev --port PORT` in the scratch copy, in a session of its own like a terminal's."""

    STOP, SUBJECT = "Ctrl-C", "loop"  # how a round ends (a table row); what verdicts say

    def __init__(self, root: Path, port: int, log: Path):
        super().__init__(root, f"http://127.0.0.1:{port}")
        self.port, self.log_path = port, log

    def start(self) -> None:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        command = [sys.executable, "-m", "invoke", "dev", "--port", str(self.port)]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        if _until(self.serves_current_code, START_TIMEOUT) is None:
            self.stop()
            raise LoopError(f"invoke dev did not serve in {START_TIMEOUT} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def shut_down(self) -> float | None:
        """SIGINT to the terminal's process group, as Ctrl-C; seconds until all have exited."""
        processes = _descendants(self.process.pid) | {self.process.pid}
        os.killpg(self.process.pid, signal.SIGINT)
        elapsed = _until(lambda: not any(map(_running, processes)), STOP_TIMEOUT)
        if elapsed is None:
            self.stop()
        self.process.wait(timeout=STOP_TIMEOUT)
        return elapsed

    def stop(self) -> None:
        """Leave nothing running (after a failure): SIGTERM, then SIGKILL, to every process."""
        processes = _descendants(self.process.pid) | {self.process.pid}
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in filter(_running, processes):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if _until(lambda: not any(map(_running, processes)), 5) is not None:
                break

    def sigkills(self) -> list[str]:
        """Lines of the stack's output that tell of a SIGKILL or a stop that timed out."""
        return [
            line for line in self.log_path.read_text().splitlines() if SIGKILL_LINES.search(line)
        ]


class Containers(Target):
    """The dev image's web and worker in containers of their own on the host network."""

    PROCESSES = ("web", "worker")
    STOP, SUBJECT = "docker stop", "container loop"

    def __init__(self, root: Path, port: int, image: str):
        super().__init__(root, f"http://127.0.0.1:{port}")
        self.port, self.image = port, image
        self.built = {
            root / "app" / edit.path: (root / "app" / edit.path).read_text() for edit in EDITS
        }
        self.names = [f"bench-loop-{process}-{port}" for process in self.PROCESSES]
        self.printed, self.killed = "", []  # the removed containers' output, and any SIGKILLed
        # Web and the worker share no .dev/ folder: the shell's services, as the cluster's pods.
        self.env = {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "METRICS_PORT": str(port + 1),
            "CELERY_HEARTBEAT_DIR": "/tmp",  # noqa: S108 (inside the container)
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": os.environ["REDIS_URL"],
        }

    def docker(self, *args: str, **options) -> subprocess.CompletedProcess:
        options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} | options
        return subprocess.run(["docker", *args], check=False, **options)  # noqa: S603, S607

    def run(self, *args: str) -> None:
        environment = [f"--env={key}={value}" for key, value in self.env.items()]
        result = self.docker("run", "--network=host", *environment, *args)
        if result.returncode:
            raise LoopError(f"docker run {' '.join(args)} failed:\n{result.stderr.decode()}")

    def start(self) -> None:
        """Fresh containers of the image as built: the scratch copy's edited files and marks
        go back to what the image holds, as a new pod starts from its image."""
        for path, text in self.built.items():
            path.write_text(text)
        self.marks = dict.fromkeys(self.marks, 0)
        self.docker("rm", "--force", *self.names)  # left by an interrupted run
        self.run("--rm", self.image, "/app/bin/migrate")
        for name, process in zip(self.names, self.PROCESSES, strict=True):
            self.run("--detach", f"--name={name}", self.image, f"/app/bin/{process}", "--reload")
        if _until(self.serves_current_code, START_TIMEOUT) is None:
            tail = self.log_tail()  # before stop() removes them
            self.stop()
            raise LoopError(f"the containers did not serve in {START_TIMEOUT} s:\n{tail}")

    def save(self, path: str, text: str) -> None:
        super().save(path, text)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            tar.add(self.root / "app" / path, arcname=path)
        for name in self.names:
            copied = self.docker(
                "exec", "-i", name, "tar", "-x", "-C", "/app", "-f", "-", input=archive.getvalue()
            )
            if copied.returncode:
                raise LoopError(f"copying {path} into {name} failed:\n{copied.stderr.decode()}")

    def logs(self) -> str:
        return "\n".join(
            self.docker("logs", name, stderr=subprocess.STDOUT).stdout.decode(errors="replace")
            for name in self.names
        )

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def shut_down(self) -> float:
        """`docker stop` of every container at once; seconds until all have exited."""
        started = time.monotonic()
        self.docker("stop", f"--time={STOP_TIMEOUT}", *self.names)
        elapsed = time.monotonic() - started
        codes = self.docker("inspect", "--format={{.State.ExitCode}}", *self.names).stdout.split()
        self.killed = [name for name, code in zip(self.names, codes, strict=True) if code == b"137"]
        self.stop()
        return elapsed

    def stop(self) -> None:
        """Remove the containers, with what they printed kept for `sigkills`."""
        self.printed = self.logs()
        self.docker("rm", "--force", *self.names)

    def sigkills(self) -> list[str]:
        lines = [line for line in self.printed.splitlines() if SIGKILL_LINES.search(line)]
        return lines + [f"{name} exited 137 (SIGKILL)" for name in self.killed]


def docker_engine() -> bool:
    """Whether a Docker engine answers (`docker version`, DOCKER_HOST if set)."""
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "version"], capture_output=True, check=False).returncode == 0  # noqa: S607


@dataclass
class LoopRun:
    times: dict[str, list[float | None]]  # kind -> seconds per try (None: a miss)
    sigkills: list[str] | None  # None: not watched (the cluster's pods)
    load: tuple[float, float, float]  # the load average when it ended
    subject: str = "loop"  # what the verdicts are named after ("container loop")


def rounds(target: Stack | Containers, tries: int, say: Callable[[str], None]) -> LoopRun:
    """`tries` rounds: start the stack, make every edit once, stop it."""
    times: dict[str, list[float | None]] = {edit.name: [] for edit in EDITS} | {target.STOP: []}
    for round_number in range(1, tries + 1):
        target.start()
        try:
            for edit in EDITS:
                times[edit.name].append(target.edit(edit))
        except BaseException:
            target.stop()
            raise
        times[target.STOP].append(target.shut_down())
        say(
            f"round {round_number}: "
            + ", ".join(f"{k} {_seconds(v[-1])}" for k, v in times.items())
        )
    return LoopRun(times, target.sigkills(), os.getloadavg(), target.SUBJECT)


def run(tries: int, port: int, say: Callable[[str], None]) -> LoopRun:
    """The rounds under `invoke dev` in a scratch copy."""
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as scratch:
        LOG.parent.mkdir(exist_ok=True)
        LOG.write_text("")
        say(f"`invoke dev --port {port}` in a scratch copy, {tries} rounds; its output: {LOG}")
        return rounds(Stack(scratch_copy(Path(scratch)), port, LOG), tries, say)


def run_containers(tries: int, port: int, say: Callable[[str], None]) -> LoopRun:
    """The rounds against the dev image built from a scratch copy (see the module's help)."""
    from ops.image import build_command

    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        raise LoopError("the containers need DATABASE_URL and REDIS_URL (they share no .dev/)")
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as scratch:
        root, image = scratch_copy(Path(scratch)), "todo:bench-loop"
        say(f"building the dev image {image} from the scratch copy (invoke image.build)...")
        built = subprocess.run(  # noqa: S603
            build_command(image, "dev", root),
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode:
            raise LoopError(f"docker build failed:\n{(built.stdout + built.stderr)[-3000:]}")
        say(f"web and worker containers on port {port}, {tries} rounds, edits synced as by Tilt")
        return rounds(Containers(root, port, image), tries, say)


def live_update(target: Target, names: tuple[str, ...], tries: int) -> dict[str, list]:
    """The edits named, `tries` times each, to the code under target.root/app, which the app
    at target runs and syncs itself (Tilt's live_update): the bench page is added first, and
    every file is put back as it was afterwards."""
    originals = add_fixtures(target.root)
    try:
        if _until(target.serves_current_code, START_TIMEOUT) is None:
            raise LoopError(f"{target.base}/accounts/bench-loop/ never served the bench page")
        times = {name: [] for name in names}
        for _ in range(tries):
            for edit in (edit for edit in EDITS if edit.name in names):
                times[edit.name].append(target.edit(edit))
    finally:
        for path, text in originals.items():
            path.write_text(text)
    return times


def _seconds(value: float | None) -> str:
    return "miss" if value is None else f"{value:.2f} s"


def _budget(kind: str) -> tuple[str, float]:
    edits = {edit.name: edit for edit in EDITS}
    return (
        (edits[kind].restarts, edits[kind].budget) if kind in edits else ("all exit", CTRL_C_BUDGET)
    )


def table(run: LoopRun, markdown: bool) -> str:
    header = ("change", "restarts", "budget", "min", "median", "max", "misses")
    rows = []
    for kind, values in run.times.items():
        restarts, budget = _budget(kind)
        measured = sorted(v for v in values if v is not None)
        figures = [f"{f(measured):.2f}" if measured else "-" for f in (min, statistics.median, max)]
        rows.append((kind, restarts, f"{budget:g} s", *figures, str(values.count(None))))
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in (header, *rows)
    )


def report(run: LoopRun, say: Callable[[str], None], markdown=False, slack=0.0) -> list[Verdict]:
    """Print the table, the load and any SIGKILL line; the verdicts, to print and check."""
    say("\n" + table(run, markdown))
    say("load average at the end: " + " ".join(f"{load:.2f}" for load in run.load))
    for line in run.sigkills or []:
        say(f"  {line}")
    return verdicts(run, slack)


def verdicts(run: LoopRun, slack: float = 0.0) -> list[Verdict]:
    """Each kind's median within its budget (plus `slack` seconds), no miss, no SIGKILL."""
    found = []
    for kind, values in run.times.items():
        budget = _budget(kind)[1] + slack
        measured = [v for v in values if v is not None]
        median = statistics.median(measured) if measured else None
        passed = median is not None and median <= budget and None not in values
        rule = f"median {_seconds(median)} within {budget:g} s, every try live"
        found.append(Verdict(f"{run.subject} {kind}", rule, passed))
    if run.sigkills is not None:
        rule = f"{len(run.sigkills)} SIGKILL or timed-out stops, none allowed"
        found.append(Verdict(run.subject, rule, not run.sigkills))
    return found
