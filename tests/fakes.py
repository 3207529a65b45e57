"""Fake command-line tools, for testing tasks that drive docker, kind, kubectl, doctl, aws...

`install()` writes one wrapper per tool into a bin directory that a test puts first on
PATH. Each wrapper runs `python tests/fakes.py HANDLERS TOOL ARGS...`, where HANDLERS is a
Python file defining `HANDLERS = {tool: handler(state, args, stdin) -> exit code}`. Every
call is appended to $FAKE_TOOLS_LOG (one JSON object a line: tool, args, stdin), and the
world the fakes pretend to manage lives in $FAKE_TOOLS_STATE (a JSON file) that handlers
read and change. Handlers answer like the real tools, closely enough for the code under
test to parse, and return `unexpected(tool, args)` (exit 97) for any other call, so a
command nobody expected fails the test instead of passing unnoticed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

UNEXPECTED = 97


def unexpected(tool: str, args: list[str]) -> int:
    print(f"fake {tool}: unexpected call: {args}", file=sys.stderr)
    return UNEXPECTED


def reads_stdin(args: list[str]) -> bool:
    return args[-1:] == ["-"] or "/dev/stdin" in args or "--password-stdin" in args


@dataclass
class FakeTools:
    """The bin directory of the fakes, and the state and call log they share."""

    bin_dir: Path
    state_file: Path
    log_file: Path

    @property
    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def update(self, **changes) -> None:
        self.state_file.write_text(json.dumps(self.state | changes))

    def remove(self, tool: str) -> None:
        (self.bin_dir / tool).unlink()

    def calls(self) -> list[dict]:
        """Every command run so far, oldest first; reading them clears the log."""
        text = self.log_file.read_text()
        self.log_file.write_text("")
        return [json.loads(line) for line in text.splitlines()]

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to find the state and the log."""
        return {"FAKE_TOOLS_STATE": str(self.state_file), "FAKE_TOOLS_LOG": str(self.log_file)}


def install(directory: Path, handlers: Path, tools: Iterable[str], state: dict) -> FakeTools:
    """Wrappers for `tools` in directory/bin, answered by `handlers`, starting from `state`."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    for tool in tools:
        wrapper = bin_dir / tool
        wrapper.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" '
            f'"{handlers}" {tool} "$@"\n'
        )
        wrapper.chmod(0o755)
    fakes = FakeTools(bin_dir, directory / "state.json", directory / "calls.jsonl")
    fakes.state_file.write_text(json.dumps(state))
    fakes.log_file.write_text("")
    return fakes


def main(handlers_file: Path, tool: str, args: list[str]) -> int:
    # Handler files import `unexpected` from here as `fakes`: the module already running.
    sys.modules.setdefault("fakes", sys.modules[__name__])
    spec = importlib.util.spec_from_file_location("fake_handlers", handlers_file)
    handlers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handlers)
    state_file = Path(os.environ["FAKE_TOOLS_STATE"])
    state = json.loads(state_file.read_text())
    stdin = sys.stdin.read() if reads_stdin(args) else None
    with open(os.environ["FAKE_TOOLS_LOG"], "a") as log:
        log.write(json.dumps({"tool": tool, "args": args, "stdin": stdin}) + "\n")
    code = handlers.HANDLERS[tool](state, args, stdin)
    # Replaced whole, never rewritten in place: a fake on the other side of a pipe may read it.
    written = state_file.with_name(f"{state_file.name}.{os.getpid()}")
    written.write_text(json.dumps(state, indent=1))
    written.replace(state_file)
    return code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))
