"""The Dockerfile, parsed once for the image tests (the parser is shared with tests/tilt), and
the options of the smoke test (`invoke image.smoke` passes them; docs/image.md)."""

from __future__ import annotations

import pytest

from ops.image import DOCKERFILE
from tests.dockerfile import Stage, parse_dockerfile, stage_chain_from_bases

APP_UID = 10001  # docs/contract.md: the image's user and group
# The step that installs the locked dependencies: a code-only change must find it cached.
DEPENDENCY_STEP = "uv sync --locked --no-dev --no-install-project"


def pytest_addoption(parser):
    smoke = parser.getgroup("smoke", "the image smoke test, tests/image/test_smoke.py")
    smoke.addoption(
        "--smoke", action="store_true", help="run it even without DOCKER_HOST; no engine fails it"
    )
    smoke.addoption("--smoke-image", default="", help="test this image instead of building one")
    smoke.addoption("--smoke-postgres", default="", help="PostgreSQL admin URL (default: suite's)")
    smoke.addoption(
        "--smoke-redis", default="", help="Redis URL, an unused index (default: suite's)"
    )
    smoke.addoption("--smoke-keep", action="store_true", help="keep containers, database, keys")
    smoke.addoption("--smoke-no-dev", action="store_true", help="skip the dev target's check")


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
