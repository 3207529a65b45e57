"""Stand-ins for docker, kind, kubectl and tilt, for testing `invoke up` / `invoke down`.

Run through tests/fakes.py, which records every call and keeps the state: whether Docker
runs, the registry container, kind clusters and their nodes' files, objects applied with
kubectl. Answers follow the real tools' output closely enough for ops/cluster.py to parse.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fakes import unexpected  # tests/fakes.py, which runs this file

REGISTRY = "kind-registry"


def docker(state: dict, args: list[str], stdin: str | None) -> int:
    if not state["docker_running"] and args[:1] != ["version"]:
        print(
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.", file=sys.stderr
        )
        return 1
    registry = state["registry"]
    match args:
        case ["info", "--format", "{{.ServerVersion}}"]:
            print("28.5.1")
        case ["inspect", "--format", template, name]:
            if name != REGISTRY or registry is None:
                print(f"Error: No such object: {name}", file=sys.stderr)
                return 1
            if template == "{{.State.Running}}":
                print("true" if registry["running"] else "false")
            elif template == "{{json .NetworkSettings.Networks.kind}}":
                print('{"NetworkID": "f00"}' if "kind" in registry["networks"] else "null")
            else:
                return unexpected("docker", args)
        case ["run", "--detach", *options, image] if "--name" in options:
            name = options[options.index("--name") + 1]
            if name == REGISTRY and registry is not None:
                print(
                    f'docker: Error response from daemon: Conflict. "{name}" is in use',
                    file=sys.stderr,
                )
                return 125
            state["registry"] = {
                "running": True,
                "networks": ["bridge"],
                "image": image,
                "options": options,
            }
            print("0123456789ab")
        case ["start", name] if name == REGISTRY and registry is not None:
            registry["running"] = True
            print(name)
        case ["network", "connect", "kind", name] if name == REGISTRY and registry is not None:
            registry["networks"].append("kind")
        case ["rm", "--force", "--volumes", name] if name == REGISTRY:
            state["registry"] = None
            print(name)
        case ["exec", node, "cat", path]:
            content = _node_files(state, node).get(path)
            if content is None:
                print(f"cat: {path}: No such file or directory", file=sys.stderr)
                return 1
            sys.stdout.write(content)
        case ["exec", node, "mkdir", "-p", _path]:
            _node_files(state, node)
        case ["exec", "--interactive", node, "cp", "/dev/stdin", path]:
            _node_files(state, node)[path] = stdin
        case _:
            return unexpected("docker", args)
    return 0


def _node_files(state: dict, node: str) -> dict:
    for cluster in state["clusters"].values():
        if node in cluster["nodes"]:
            return cluster["files"]
    raise SystemExit(f"Error: No such container: {node}")


def kind(state: dict, args: list[str], stdin: str | None) -> int:
    clusters = state["clusters"]
    match args:
        case ["version"]:
            print(f"kind v{state['versions']['kind']} go1.24.6 linux/amd64")
        case ["get", "clusters"]:
            if not clusters:
                print("No kind clusters found.", file=sys.stderr)
            for name in clusters:
                print(name)
        case ["create", "cluster", "--name", name, "--config", config, "--wait", _wait]:
            if name in clusters:
                print(f'ERROR: failed to create cluster: cluster "{name}" exists', file=sys.stderr)
                return 1
            import yaml  # only here and in kubectl apply: keeps every other call fast

            state["created_from_config"] = yaml.safe_load(Path(config).read_text())
            clusters[name] = {"nodes": [f"{name}-control-plane"], "files": {}, "objects": {}}
            print(f'Creating cluster "{name}" ...\nSet kubectl context to "kind-{name}"')
        case ["get", "nodes", "--name", name]:
            for node in clusters.get(name, {}).get("nodes", []):
                print(node)
        case ["delete", "cluster", "--name", name]:
            clusters.pop(name, None)
            print(f'Deleting cluster "{name}" ...')
        case _:
            return unexpected("kind", args)
    return 0


def kubectl(state: dict, args: list[str], stdin: str | None) -> int:
    if args == ["version", "--client", "--output=json"]:
        print(json.dumps({"clientVersion": {"gitVersion": f"v{state['versions']['kubectl']}"}}))
        return 0
    if args[:1] != ["--context"]:
        return unexpected("kubectl", args)
    context, args = args[1], args[2:]
    cluster = state["clusters"].get(context.removeprefix("kind-"))
    if not context.startswith("kind-") or cluster is None:
        print(f'error: context "{context}" does not exist', file=sys.stderr)
        return 1
    objects = cluster["objects"]
    match args:
        case ["apply", *options, "-f", "-"] if options in ([], ["--server-side"]):
            import yaml

            for doc in (d for d in yaml.safe_load_all(stdin) if d):
                meta = doc["metadata"]
                key = f"{doc['kind']}/{meta.get('namespace', '')}/{meta['name']}"
                verb = (
                    "created"
                    if key not in objects
                    else "unchanged"
                    if objects[key] == doc
                    else "configured"
                )
                if options:
                    verb = "serverside-applied"
                objects[key] = doc
                print(f"{doc['kind'].lower()}/{meta['name']} {verb}")
        case [
            "--namespace",
            "projectcontour",
            "get",
            "deployment",
            "contour",
            "--output",
            _jsonpath,
        ]:
            deployment = objects.get("Deployment/projectcontour/contour")
            if deployment is None:
                print(
                    'Error from server (NotFound): deployments.apps "contour" not found',
                    file=sys.stderr,
                )
                return 1
            print(deployment["spec"]["template"]["spec"]["containers"][0]["image"], end="")
        case ["--namespace", namespace, "rollout", "status", workload, "--timeout=300s"]:
            kind_name, name = workload.split("/")
            if not any(key.lower() == f"{kind_name}/{namespace}/{name}" for key in objects):
                print(
                    f'Error from server (NotFound): {kind_name} "{name}" not found', file=sys.stderr
                )
                return 1
            print(f"{workload} successfully rolled out")
        case _:
            return unexpected("kubectl", args)
    return 0


def tilt(state: dict, args: list[str], stdin: str | None) -> int:
    match args:
        case ["version"]:
            print(f"v{state['versions']['tilt']}, built 2026-07-29")
        case ["up", "--context", _context, *_tiltfile_args]:
            print("Tilt started (fake)")
        case _:
            return unexpected("tilt", args)
    return 0


HANDLERS = {"docker": docker, "kind": kind, "kubectl": kubectl, "tilt": tilt}
