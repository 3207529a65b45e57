"""A stand-in for the docker CLI, for testing `invoke image.build` and `image.smoke`.

Run through tests/fakes.py, which records every call. The state says what the fake
engine looks like: its server version ("" when no engine is reachable), the client's
version, whether buildx and the default bridge network exist. Each build records the
DOCKER_BUILDKIT it ran with. Answers follow the real CLI's output.
"""

from __future__ import annotations

import os
import sys

from fakes import unexpected  # tests/fakes.py, which runs this file


def docker(state: dict, args: list[str], stdin: str | None) -> int:
    match args:
        case ["version", "--format", "{{.Server.Version}}"]:
            if not state["server"]:
                print(
                    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                    "Is the docker daemon running?",
                    file=sys.stderr,
                )
                return 1
            print(state["server"])
        case ["version", "--format", "{{.Client.Version}}"]:
            print(state["client"])
        case ["buildx", "version"]:
            if not state["buildx"]:
                print("docker: unknown command: docker buildx", file=sys.stderr)
                return 1
            print("github.com/docker/buildx v0.25.0 faked")
        case ["network", "inspect", "bridge"]:
            if not state["bridge"]:
                print("Error response from daemon: network bridge not found", file=sys.stderr)
                return 1
            print("[]")
        case ["build", *_]:
            state["buildkit"] = os.environ.get("DOCKER_BUILDKIT")
            print("#12 DONE 0.1s")
        case ["image", "inspect", "--format", "{{.Size}}", _]:
            print("123456789")
        case _:
            return unexpected("docker", args)
    return 0


HANDLERS = {"docker": docker}
