"""The performance harness behind `invoke bench` (docs/performance.md).

Its steps print their figures as one `BENCH_RESULT {json}` line (wrk through
bench/load.lua, the worker steps through bench/reminders.py), so that logs printed on
the same stream never get in the way.
"""

from __future__ import annotations

import json

RESULT_MARKER = "BENCH_RESULT "


class HarnessError(RuntimeError):
    """A step of the harness cannot go on: `invoke bench` ends with its message alone."""


class NoResultError(HarnessError):
    """A step finished without printing its result line."""


def result_json(output: str, source: str) -> dict:
    """The figures of the last BENCH_RESULT line in `output`."""
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        raise NoResultError(f"{source} printed no {RESULT_MARKER.strip()} line:\n{output.strip()}")
    return json.loads(lines[-1].removeprefix(RESULT_MARKER))
