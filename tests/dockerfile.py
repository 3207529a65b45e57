"""What `docker build` (and Tilt) takes from the repo: Dockerfile stages and ignore rules.

Enough of Docker's own semantics to check the Tiltfile's docker_build against the real
Dockerfile and .dockerignore: which stages a target builds on, which repo paths those
stages read (COPY/ADD sources, RUN --mount=type=bind sources), and whether a path is
excluded by dockerignore patterns (moby/patternmatcher rules: `*`, `?`, `**`, `!`
exceptions, last match wins, a match on a parent directory excludes its contents).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath


@dataclass
class Instruction:
    keyword: str
    flags: dict[str, str]
    args: list[str]


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)


def _logical_lines(text: str) -> list[str]:
    """Instructions with their line continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def _instruction(line: str) -> Instruction:
    keyword, _, rest = line.partition(" ")
    if rest.lstrip().startswith("["):  # exec form: COPY ["a", "b"]
        return Instruction(keyword.upper(), {}, json.loads(rest))
    tokens = shlex.split(rest, posix=True)
    flags, args = {}, []
    for token in tokens:
        if token.startswith("--") and not args:
            name, _, value = token[2:].partition("=")
            # RUN may carry several --mount flags: keep them all.
            flags[name] = f"{flags[name]};{value}" if name in flags else value
        else:
            args.append(token)
    return Instruction(keyword.upper(), flags, args)


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for line in _logical_lines(text):
        instruction = _instruction(line)
        if instruction.keyword == "FROM":
            base = instruction.args[0]
            named = len(instruction.args) >= 3 and instruction.args[1].upper() == "AS"
            stages.append(Stage(instruction.args[2] if named else str(len(stages)), base))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def stage_chain(stages: list[Stage], target: str) -> list[Stage]:
    """The target stage and every stage it is built FROM or COPYs --from, recursively."""
    by_name = {stage.name: stage for stage in stages}
    if target not in by_name:
        raise KeyError(f"no stage named {target!r} in the Dockerfile")
    chain, pending = [], [target]
    while pending:
        name = pending.pop()
        if name not in by_name or any(stage.name == name for stage in chain):
            continue
        stage = by_name[name]
        chain.append(stage)
        pending.append(stage.base)
        pending += [i.flags["from"] for i in stage.instructions if "from" in i.flags]
    return chain


def copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY/ADD that reads the build context."""
    return [
        (i.args[:-1], i.args[-1])
        for i in stage.instructions
        if i.keyword in ("COPY", "ADD") and "from" not in i.flags
    ]


def context_inputs(stages: list[Stage], target: str) -> set[str]:
    """Every build-context path the target's build reads."""
    inputs: set[str] = set()
    for stage in stage_chain(stages, target):
        for sources, _ in copies(stage):
            inputs |= {_clean(source) for source in sources}
        for instruction in stage.instructions:
            for mount in instruction.flags.get("mount", "").split(";"):
                options = dict(part.partition("=")[::2] for part in mount.split(",") if part)
                if options.get("type") == "bind" and "from" not in options:
                    inputs.add(_clean(options.get("source", ".")))
    return inputs


def workdir(stages: list[Stage], target: str) -> str:
    """The WORKDIR in effect at the end of the target stage (inherited through FROM)."""
    current = "/"
    for stage in reversed(stage_chain_from_bases(stages, target)):
        for instruction in stage.instructions:
            if instruction.keyword == "WORKDIR":
                current = str(PurePosixPath(current) / instruction.args[0])
    return current


def stage_chain_from_bases(stages: list[Stage], target: str) -> list[Stage]:
    """The target and the stages it is built FROM (not those it copies from), target first."""
    by_name = {stage.name: stage for stage in stages}
    chain = [by_name[target]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def _clean(path: str) -> str:
    cleaned = str(PurePosixPath(path))
    return "." if cleaned in ("", ".") else cleaned.lstrip("/")


# --- .dockerignore -------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    regex, i = "^", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            regex += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char in "[]":
            regex += char
        else:
            regex += re.escape(char)
        i += 1
    return re.compile(regex + "$")


class IgnoreRules:
    """dockerignore patterns, applied the way Docker and Tilt apply them."""

    def __init__(self, patterns: list[str]):
        self.rules = []
        for raw in patterns:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            cleaned = str(PurePosixPath(line.removeprefix("!").strip())).lstrip("/")
            self.rules.append((exception, _pattern_regex(cleaned)))

    @classmethod
    def from_file(cls, text: str) -> IgnoreRules:
        return cls(text.splitlines())

    @classmethod
    def only(cls, paths: list[str]) -> IgnoreRules:
        """Tilt turns docker_build(only=[...]) into `**` plus one exception per path."""
        return cls(["**", *(f"!{path}" for path in paths)]) if paths else cls([])

    def excludes(self, path: str) -> bool:
        parents = [str(parent) for parent in PurePosixPath(path).parents if str(parent) != "."]
        excluded = False
        for exception, regex in self.rules:
            if regex.match(path) or any(regex.match(parent) for parent in parents):
                excluded = not exception
        return excluded
