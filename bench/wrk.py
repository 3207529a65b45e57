"""Drive one endpoint (bench/load.lua) or the realistic mix (bench/mix.lua) with wrk, and
read back its figures."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench import NoResultError, result_json

LUA_SCRIPT = Path(__file__).with_name("load.lua")
MIX_SCRIPT = Path(__file__).with_name("mix.lua")
INSTALL_HINT = "sudo apt-get install -y wrk (Debian/Ubuntu) or brew install wrk (macOS)"


class WrkError(NoResultError):
    """wrk failed, hung or printed no result line."""


@dataclass(frozen=True)
class Load:
    """How hard and how long: wrk's threads and open connections, warm-up and measure seconds."""

    threads: int = 2
    connections: int = 32
    warmup: float = 5.0
    duration: float = 30.0
    timeout: float = 2.0  # a response slower than this counts as an error (wrk's timeout)


@dataclass(frozen=True)
class Request:
    """What every request of one endpoint looks like; wrk cycles through `paths`."""

    method: str
    paths: tuple[str, ...]
    expect: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    script = LUA_SCRIPT

    def environment(self) -> dict[str, str]:
        if any(" " in path for path in self.paths):
            raise ValueError(f"paths must be URL-encoded, without spaces: {self.paths}")
        return {
            "BENCH_METHOD": self.method,
            "BENCH_PATHS": " ".join(self.paths),
            "BENCH_EXPECT": str(self.expect),
            "BENCH_HEADERS": "\n".join(f"{name}: {value}" for name, value in self.headers.items()),
            "BENCH_BODY": self.body,
        }


@dataclass(frozen=True)
class Mix:
    """Many signed-in users (a file of bench/sessions.py), each request a random one's: a
    GET of one of `paths`, or, at `write_share`, an htmx create or toggle of their own."""

    paths: tuple[str, ...]
    users_file: Path
    origin: str
    write_share: float = 0.1
    method = "MIX"
    script = MIX_SCRIPT

    def environment(self) -> dict[str, str]:
        return {
            "BENCH_PATHS": " ".join(self.paths),
            "BENCH_USERS": str(self.users_file),
            "BENCH_WRITE_SHARE": f"{self.write_share:g}",
            "BENCH_ORIGIN": self.origin.rstrip("/"),
        }


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int  # connect, read and write errors and timeouts
    unexpected_status: int  # responses whose status was not the expected one (mix: >= 400)
    redirects: int = 0  # mix: 3xx answers (a session the site did not take)
    writes: int = 0  # mix: requests sent as writes

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.unexpected_status


def parse(output: str) -> Result:
    """The figures of the BENCH_RESULT line that load.lua prints at the end of a run."""
    figures = result_json(output, "wrk")
    return Result(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        socket_errors=sum(
            figures[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
        ),
        unexpected_status=figures["unexpected_status"],
        redirects=figures.get("redirects", 0),
        writes=figures.get("writes", 0),
    )


def command(
    wrk: str, base_url: str, request: Request | Mix, load: Load, seconds: float
) -> list[str]:
    return [
        wrk,
        f"--threads={load.threads}",
        f"--connections={load.connections}",
        f"--duration={seconds:g}s",
        f"--timeout={load.timeout:g}s",
        f"--script={request.script}",
        base_url.rstrip("/") + request.paths[0],
    ]


def run(wrk: str, base_url: str, request: Request | Mix, load: Load, seconds: float) -> Result:
    """One wrk run of `seconds`, bounded: wrk stops itself, and is killed if it hangs."""
    argv = command(wrk, base_url, request, load, seconds)
    try:
        finished = subprocess.run(  # noqa: S603 (argv built here, no shell)
            argv,
            env={**os.environ, **request.environment()},
            capture_output=True,
            text=True,
            timeout=seconds + load.timeout + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise WrkError(f"wrk did not stop after {seconds:g}s: {' '.join(argv)}") from error
    if finished.returncode != 0:
        raise WrkError(f"wrk exited {finished.returncode}: {finished.stderr.strip()}")
    return parse(finished.stdout)
