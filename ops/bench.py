"""`invoke bench`: the performance harness (bench/, docs/performance.md). Figures depend on the
machine: compare ratios to the limit reference; a failed budget makes the task exit 1."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from ops.tools import require

say = functools.partial(print, flush=True)
MARKDOWN = "print the table as Markdown (for docs/performance.md)"
LOAD_HELP = {
    "duration": "seconds measured per endpoint (default 30)",
    "warmup": "seconds of warm-up per endpoint, not measured (default 5)",
    "connections": "open connections wrk keeps (default 32)",
    "threads": "wrk threads (default 2)",
    "only": "comma-separated endpoints, e.g. mix,login (the limit always runs); "
    "all: limit, mix, list-50, list-500, list-category, create, complete, readyz, login",
    "writes": "share of the mix's requests that write, 0 to 1 (default 0.1)",
    "app": "another checkout's app/ folder to measure instead (an older commit's "
    "`git worktree`, to compare: same harness, same mix)",
    "peer": "a checkout of HasanIstanbouli/Todo-List-Django with its .venv: measure its "
    "sign-in page and task list in the same run (bench/peer.py)",
    "markdown": MARKDOWN,
}


def header(*lines: str) -> None:
    from bench.harness import machine

    say(f"invoke {' '.join(sys.argv[1:])}", machine(), *lines, sep="\n")


def guarded(step):
    """Run a bench step; the harness's own errors end the task with their message."""
    from bench import HarnessError

    try:
        return step()
    except HarnessError as error:
        raise Exit(f"error: {error}", code=1) from None


def check(verdicts: list) -> None:
    say("", *verdicts, sep="\n")
    if failed := [verdict for verdict in verdicts if not verdict.passed]:
        raise Exit(f"{len(failed)} budget(s) failed (see docs/performance.md)", code=1)


def worker_verdicts() -> list:
    from bench import harness, report

    run = guarded(lambda: harness.run_worker(say))
    say("", *report.worker_lines(run), sep="\n")
    return report.worker_verdicts(run)


@task(help=LOAD_HELP | {"worker": "then benchmark the worker too (what `invoke bench` does)"})
def web(
    c,
    duration=30.0,
    warmup=5.0,
    connections=32,
    threads=2,
    only="",
    markdown=False,
    writes=0.1,
    peer="",
    app="",
    worker=False,
):
    """Benchmark the web endpoints (gunicorn + wrk): the realistic mix first."""
    from bench import harness, report, wrk

    selected = tuple(name.strip() for name in only.split(",") if name.strip())
    if unknown := sorted(set(selected) - set(harness.ENDPOINT_NAMES)):
        known = ", ".join(harness.ENDPOINT_NAMES)
        raise Exit(f"error: unknown endpoint(s) {', '.join(unknown)}; known: {known}", 2)
    if not 0 <= writes <= 1:
        raise Exit(f"error: --writes is a share between 0 and 1, not {writes:g}", code=2)
    if peer and not (peer_dir := Path(peer).resolve()).joinpath("manage.py").exists():
        raise Exit(f"error: --peer {peer}: no manage.py there (a checkout of the peer?)", 2)
    app_dir = Path(app).resolve() if app else harness.APP_DIR
    if not (app_dir / "bin" / "web").exists():
        raise Exit(f"error: --app {app}: no bin/web there (the app/ folder of a checkout?)", 2)
    wrk_path = require("wrk", wrk.INSTALL_HINT)
    load = wrk.Load(threads=threads, connections=connections, warmup=warmup, duration=duration)
    shape = f"wrk: {threads} threads, {connections} connections, {warmup:g} s warm-up, {duration:g}"
    header(f"{shape} s measured per endpoint; plain HTTP on loopback, else production settings\n")
    args = (wrk_path, load, selected, say, writes, peer_dir if peer else None, app_dir)
    run = guarded(lambda: harness.run_web(*args))
    say("", *report.web_lines(run, markdown), sep="\n")
    check(report.web_verdicts(run) + (worker_verdicts() if worker else []))


@task(default=True, help={"markdown": MARKDOWN})
def run(c, markdown=False):
    """Benchmark the web endpoints, then the worker; print the tables and check the budgets."""
    web(c, markdown=markdown, worker=True)


@task
def worker(c):
    """Benchmark only the worker: reminder scan over 100,000 due todos, email delivery."""
    header()
    check(worker_verdicts())


@task(
    help={
        "tries": "rounds: each starts `invoke dev`, makes every edit once, then Ctrl-C (default 5)",
        "port": "port of the measured `invoke dev` (default 16300; +1 and +2 for its metrics)",
        "markdown": MARKDOWN,
        "no_container": "skip the same rounds against the dev image, run when Docker answers",
    }
)
def loop(c, tries=5, port=16300, markdown=False, no_container=False):
    """Time the edit loop: each kind of saved file until it is served, then Ctrl-C; under
    `invoke dev`, then (where a Docker engine answers) in the dev image's containers."""
    from bench import loop as dev_loop

    header()
    verdicts = dev_loop.report(guarded(lambda: dev_loop.run(tries, port, say)), say, markdown)
    if not no_container and dev_loop.docker_engine():
        result = guarded(lambda: dev_loop.run_containers(tries, port + 10, say))
        verdicts += dev_loop.report(result, say, markdown)
    elif not no_container:
        say("\nNo Docker engine answers (`docker version`): the dev image's rounds are skipped.")
    check(verdicts)


ns = Collection("bench", run, web, worker, loop)
