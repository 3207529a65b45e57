"""The Dockerfile, parsed once for the image tests (the parser is shared with tests/tilt)."""

from __future__ import annotations

import pytest

from ops.image import DOCKERFILE
from tests.dockerfile import Stage, parse_dockerfile, stage_chain_from_bases


@pytest.fixture(scope="session")
def stages() -> dict[str, Stage]:
    return {stage.name: stage for stage in parse_dockerfile(DOCKERFILE.read_text())}


def instructions(stages: dict[str, Stage], target: str, keyword: str):
    """The target's instructions of one kind, its base stages' first (build order)."""
    chain = reversed(stage_chain_from_bases(list(stages.values()), target))
    return [i for stage in chain for i in stage.instructions if i.keyword == keyword]


def environment(stages: dict[str, Stage], target: str) -> dict[str, str]:
    """ENV in effect at the end of the target stage, inherited through FROM."""
    env: dict[str, str] = {}
    for instruction in instructions(stages, target, "ENV"):
        env |= dict(arg.split("=", 1) for arg in instruction.args)
    return env
