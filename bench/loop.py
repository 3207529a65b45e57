"""`invoke bench.loop`: how long a saved file takes to be live under `invoke dev`.

In a scratch copy of the repository it starts `invoke dev` as a user does, then for each
kind of edit writes the file and polls until the served page (for a task module: the
worker's next task result) shows the change; at the end of each round, Ctrl-C and the time
until every process of the stack has exited. Each round is a fresh `invoke dev`.

The scratch copy gets a small page of its own, `/accounts/bench-loop/`, that prints a mark
from a view, a form and a service module (and sends a task that writes the task module's
mark to a file), so that each edit changes exactly one module and what it serves.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.report import Verdict

REPO_ROOT = Path(__file__).resolve().parent.parent
LOG = REPO_ROOT / ".dev" / "bench-loop.log"  # what `invoke dev` printed, kept for a look
START_TIMEOUT = 180  # a fresh stack on a loaded 2-core machine: imports and migrations
EDIT_TIMEOUT = 30  # an edit not live after this long counts as a miss
SETTLE_SECONDS = 2  # after an edit, for the restarted processes to finish starting
STOP_TIMEOUT = 15
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

    if "task" in request.GET:
        tasks.bench_loop_task.delay()
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


@shared_task
def bench_loop_task():
    import os
    from pathlib import Path

    Path(os.environ["BENCH_LOOP_RESULT"]).write_text(BENCH_TASK)
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


class LoopError(RuntimeError):
    """The stack did not start or stop, or the scratch copy could not be made."""


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
    for name, code in FIXTURES.items():
        with (into / "app" / name).open("a") as module:
            module.write(code)
    template = into / "app" / EDITS[0].path
    template.write_text(template.read_text().replace(*TEMPLATE_MARK, 1))
    return into


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def _until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `condition` holds, polled every 10 ms; None after `timeout`."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < timeout:
        if condition():
            return elapsed
        time.sleep(0.01)
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


class Stack:
    """`invoke dev --port PORT` in the scratch copy, in a session of its own like a terminal's."""

    def __init__(self, root: Path, port: int, log: Path):
        self.root, self.port, self.log_path = root, port, log
        self.base = f"http://127.0.0.1:{port}"
        self.result = root / "bench-loop-task"
        self.marks = {edit.mark: 0 for edit in EDITS}

    def start(self) -> None:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        env["BENCH_LOOP_RESULT"] = str(self.result)
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

    def page(self) -> str:
        status, body = _get(f"{self.base}/accounts/bench-loop/")
        return body if status == 200 else ""

    def task_result(self) -> str:
        _get(f"{self.base}/accounts/bench-loop/?task=1")  # the worker writes its mark
        return self.result.read_text() if self.result.exists() else ""

    def serves_current_code(self) -> bool:
        """Web and the worker both run the code as it is on disk now."""
        expected = " ".join(f"{mark}-{self.marks[mark]}" for mark in ("view", "form", "service"))
        return self.page() == expected and self.task_result() == f"task-{self.marks['task']}"

    def live(self, edit: Edit) -> bool:
        mark = f"{edit.mark}-{self.marks[edit.mark]}"
        if edit.name == "template":
            return mark in _get(f"{self.base}/accounts/login/")[1]
        if edit.name == "URL":
            return _get(f"{self.base}/accounts/{mark}/")[0] == 200
        if edit.name == "task":
            return self.task_result() == mark
        return mark in self.page().split()

    def edit(self, edit: Edit) -> float | None:
        """Save the next mark into the edit's module; seconds until it is live (None: never)."""
        module = self.root / "app" / edit.path
        old = f"{edit.mark}-{self.marks[edit.mark]}"
        self.marks[edit.mark] += 1
        new = f"{edit.mark}-{self.marks[edit.mark]}"
        module.write_text(module.read_text().replace(old, new))
        elapsed = _until(lambda: self.live(edit), EDIT_TIMEOUT)
        time.sleep(SETTLE_SECONDS)
        if _until(self.serves_current_code, EDIT_TIMEOUT) is None:
            raise LoopError(
                f"the stack did not settle after the {edit.name} edit:\n{self.log_tail()}"
            )
        return elapsed

    def ctrl_c(self) -> float | None:
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


@dataclass
class LoopRun:
    times: dict[str, list[float | None]]  # kind -> seconds per try (None: a miss)
    sigkills: list[str]
    load: tuple[float, float, float]  # the load average when it ended


def run(tries: int, port: int, say: Callable[[str], None]) -> LoopRun:
    times: dict[str, list[float | None]] = {edit.name: [] for edit in EDITS} | {"Ctrl-C": []}
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as scratch:
        LOG.parent.mkdir(exist_ok=True)
        LOG.write_text("")
        stack = Stack(scratch_copy(Path(scratch)), port, LOG)
        say(f"`invoke dev --port {port}` in a scratch copy, {tries} rounds; its output: {LOG}")
        for round_number in range(1, tries + 1):
            stack.start()
            try:
                for edit in EDITS:
                    times[edit.name].append(stack.edit(edit))
            except BaseException:
                stack.stop()
                raise
            times["Ctrl-C"].append(stack.ctrl_c())
            say(
                f"round {round_number}: "
                + ", ".join(f"{k} {_seconds(v[-1])}" for k, v in times.items())
            )
        sigkills = stack.sigkills()
    return LoopRun(times, sigkills, os.getloadavg())


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


def verdicts(run: LoopRun) -> list[Verdict]:
    found = []
    for kind, values in run.times.items():
        _, budget = _budget(kind)
        measured = [v for v in values if v is not None]
        median = statistics.median(measured) if measured else None
        passed = median is not None and median <= budget and None not in values
        rule = f"median {_seconds(median)} within {budget:g} s, every try live"
        found.append(Verdict(f"loop {kind}", rule, passed))
    found.append(
        Verdict(
            "loop",
            f"{len(run.sigkills)} SIGKILL or timed-out stops, none allowed",
            not run.sigkills,
        )
    )
    return found
