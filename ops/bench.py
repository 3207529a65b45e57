"""`invoke bench`: the performance harness (bench/, docs/performance.md).

Figures depend on the machine: compare the ratios to the limit reference, and runs made
on the same machine. The main workload is the realistic mix (many signed-in users, the
list page's variants, writes); the single-user rows are best cases. Budgets of issues 9
and 22 are checked at the end; a failed one makes the task exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from ops.tools import require

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
    "markdown": "print the table as Markdown (for docs/performance.md)",
}


def _say(message: str) -> None:
    print(message, flush=True)


def _header(load) -> None:
    from bench.harness import machine

    info = machine()
    _say(f"invoke {' '.join(sys.argv[1:])}")
    _say(
        f"{info['date']} | {info['cpus']} CPUs ({info['cpu']}), {info['memory']} | {info['system']}"
    )
    _say(
        f"wrk: {load.threads} threads, {load.connections} connections, {load.warmup:g} s warm-up, "
        f"{load.duration:g} s measured per endpoint; plain HTTP on loopback "
        "(DJANGO_SECURE_SSL_REDIRECT=false), everything else production settings\n"
    )


def _web(load, only: str, markdown: bool, writes: float, peer: str = "", app: str = "") -> list:
    from bench import harness, report, wrk

    selected = tuple(name.strip() for name in only.split(",") if name.strip())
    unknown = sorted(set(selected) - set(harness.ENDPOINT_NAMES))
    if unknown:
        raise Exit(
            f"error: unknown endpoint(s) {', '.join(unknown)}; "
            f"known: {', '.join(harness.ENDPOINT_NAMES)}",
            code=2,
        )
    if not 0 <= writes <= 1:
        raise Exit(f"error: --writes is a share between 0 and 1, not {writes:g}", code=2)
    peer_dir = Path(peer).resolve() if peer else None
    if peer_dir is not None and not (peer_dir / "manage.py").exists():
        raise Exit(f"error: --peer {peer}: no manage.py there (a checkout of the peer?)", code=2)
    app_dir = Path(app).resolve() if app else harness.APP_DIR
    if not (app_dir / "bin" / "web").exists():
        raise Exit(f"error: --app {app}: no bin/web there (the app/ folder of a checkout?)", code=2)
    wrk_path = require("wrk", wrk.INSTALL_HINT)
    run = _guarded(
        lambda: harness.run_web(wrk_path, load, selected, _say, writes, peer_dir, app_dir)
    )
    table = report.markdown_table if markdown else report.text_table
    _say("\n" + table(run.rows))
    for legend in (
        report.mix_legend(run.rows),
        report.queries_legend(run.rows),
        report.limit_legend(run.limit_checks),
    ):
        if legend:
            _say(legend)
    _say(report.memory_line(run))
    return [report.static_verdict(run.static), *report.check_budgets(run.rows)]


def _worker() -> list:
    from bench import harness, report

    run = _guarded(lambda: harness.run_worker(_say))
    _say("")
    for line in report.worker_lines(run):
        _say(line)
    return report.worker_verdicts(run)


def _guarded(step):
    """Run a bench step; its known failures end the task with their message, not a trace."""
    from bench import NoResultError
    from bench.client import ClientError
    from bench.harness import BenchError
    from bench.loop import LoopError
    from bench.peer import PeerError
    from bench.processes import ProcessError

    try:
        return step()
    except (BenchError, ClientError, LoopError, NoResultError, PeerError, ProcessError) as error:
        raise Exit(f"error: {error}", code=1) from None


def _verdicts(verdicts: list) -> None:
    _say("")
    for verdict in verdicts:
        _say(str(verdict))
    failed = [verdict for verdict in verdicts if not verdict.passed]
    if failed:
        raise Exit(f"{len(failed)} budget(s) failed (see docs/performance.md)", code=1)


def _load(duration, warmup, connections, threads):
    from bench.wrk import Load

    return Load(threads=threads, connections=connections, warmup=warmup, duration=duration)


@task(default=True, help=LOAD_HELP)
def run(
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
):
    """Benchmark the web endpoints and the worker; print the table and check the budgets."""
    load = _load(duration, warmup, connections, threads)
    _header(load)
    verdicts = _web(load, only, markdown, writes, peer, app)
    verdicts += _worker()
    _verdicts(verdicts)


@task(help=LOAD_HELP)
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
):
    """Benchmark only the web endpoints (gunicorn + wrk): the realistic mix first."""
    load = _load(duration, warmup, connections, threads)
    _header(load)
    _verdicts(_web(load, only, markdown, writes, peer, app))


@task
def worker(c):
    """Benchmark only the worker: reminder scan over 100,000 due todos, email delivery."""
    _say(f"invoke {' '.join(sys.argv[1:])}")
    _verdicts(_worker())


@task(
    help={
        "tries": "rounds: each starts `invoke dev`, makes every edit once, then Ctrl-C (default 5)",
        "port": "port of the measured `invoke dev` (default 16300; +1 and +2 for its metrics)",
        "markdown": "print the table as Markdown (for docs/performance.md)",
    }
)
def loop(c, tries=5, port=16300, markdown=False):
    """Time the edit loop of `invoke dev`: each kind of saved file until it is served, Ctrl-C."""
    from bench import loop as dev_loop
    from bench.harness import machine

    info = machine()
    _say(f"invoke {' '.join(sys.argv[1:])}\n{info['date']} | {info['cpus']} CPUs ({info['cpu']})")
    result = _guarded(lambda: dev_loop.run(tries, port, _say))
    _verdicts(dev_loop.report(result, _say, markdown))


ns = Collection("bench", run, web, worker, loop)
