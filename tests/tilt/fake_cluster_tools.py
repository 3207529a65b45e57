"""Recording stand-ins for docker, kind, ctlptl, kubectl, tilt, pytest and git, for testing
`invoke up`, `invoke down` and `invoke cluster.check` (run through tests/fakes.py, which logs
every call). They answer the few questions ops/cluster.py asks the way the real tools do,
keep what exists in the state file, and succeed at everything else unless the state lists
the command under "failing"."""

from __future__ import annotations

import sys

CLUSTER = "todo"
WEB_IMAGE = "localhost:5001/todo:tilt-0123456789abcdef"


def handle(tool: str, state: dict, args: list[str], stdin: str | None) -> int:
    command = " ".join([tool, *args])
    if any(command.startswith(failing) for failing in state.get("failing", [])):
        print(f"fake {tool}: failing as told", file=sys.stderr)
        return 1
    match [tool, *args]:
        case ["docker", "info", "--format", "{{.MemTotal}}"]:
            if not state["docker_running"]:
                return 1
            print(state.get("docker_memory", 8 * 2**30))
        case [("kind" | "ctlptl" | "tilt") as name, "version"]:
            print(f"{name} v{state['versions'][name]}, built 2026-04-24")
        case ["kubectl", "version", "--client"]:
            print(f"Client Version: v{state['versions']['kubectl']}")
        case ["kubectl", "config", "current-context"]:
            print(state.get("context", "kind-todo"))
        case ["kind", "get", "clusters"]:
            print(CLUSTER if state["created"] else "No kind clusters found.")
        case ["ctlptl", "apply", *_]:
            state["created"] = True
        case ["ctlptl", "delete", *_]:
            state["created"], state["contour"] = False, None
        case ["kubectl", *_, "get", "deployment", name, "-o", _]:
            image = {"contour": state["contour"], "web": WEB_IMAGE}[name]
            if not image:
                return 1
            print(image)
        case ["kubectl", *_, "apply", "--server-side", "-f", "-"] if "contour" in (stdin or ""):
            import yaml  # only here: the fakes start faster without it

            for doc in yaml.safe_load_all(stdin):
                if doc["metadata"]["name"] == "contour" and doc["kind"] == "Deployment":
                    state["contour"] = doc["spec"]["template"]["spec"]["containers"][0]["image"]
        case ["kubectl", *_, "get", "application", _, "-o", _]:
            print('{"health": {"status": "Degraded"}}')
        case ["git", *_, "rev-parse", "HEAD"]:
            print("f" * 40)
        case ["tilt", "up", *_] if "--stream" in args:  # runs until it is stopped
            import time

            time.sleep(120)
        case ["tilt", "wait", *_]:  # answers only while a `tilt up` runs, like Tilt's API
            import os
            import time

            for _ in range(300):
                with open(os.environ["FAKE_TOOLS_LOG"]) as log:
                    if '"tool": "tilt", "args": ["up"' in log.read():
                        return 0
                time.sleep(0.1)
            print("fake tilt: no tilt up is running", file=sys.stderr)
            return 1
    return 0


HANDLERS = {
    tool: lambda state, args, stdin, tool=tool: handle(tool, state, args, stdin)
    for tool in ("docker", "kind", "ctlptl", "kubectl", "tilt", "pytest", "git")
}
