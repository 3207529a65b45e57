"""The local kind cluster: `invoke up` creates it and runs Tilt, `invoke down` deletes it.

`up` is idempotent: each step looks at what exists and changes only what is missing,
so a second run creates nothing and goes straight to Tilt. The steps follow kind's
local-registry guide (https://kind.sigs.k8s.io/docs/user/local-registry/):

1. preflight: Docker running; kind, kubectl and tilt present and recent enough; inotify
   limits on Linux. Every problem is reported on one line with its fix.
2. the registry container `kind-registry`, published on localhost:5001;
3. the cluster from kind-config.yaml;
4. on each node, a containerd hosts.toml that sends pulls of localhost:5001/* to the
   registry container (localhost inside a node is the node, not your machine);
5. the registry joined to the `kind` Docker network, so the nodes can reach it;
6. the `local-registry-hosting` ConfigMap (KEP-1755), from which Tilt learns where to
   push images;
7. the ingress controller (Contour, pinned manifest, checksum verified);
8. `tilt up --context kind-<name>`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import socket
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import yaml
from invoke import task
from invoke.exceptions import Exit

from ops.tools import REPO_ROOT, require

KIND_CONFIG = REPO_ROOT / "kind-config.yaml"

# The registry as kind documents it: a `registry` container published on the host's
# loopback at 5001 (5000 is taken by AirPlay on macOS), reached from the nodes by its
# container name on the `kind` network.
REGISTRY_NAME = "kind-registry"
REGISTRY_PORT = 5001
REGISTRY_CONTAINER_PORT = 5000
REGISTRY_IMAGE = (
    "registry:3.1.0@sha256:afcd13fd045b8859ac4f60fef26fc2d2f9b7b9d9e604c3c4f7c2fb1b94f95a64"
)
KIND_NETWORK = "kind"  # kind puts every cluster's nodes on this Docker network
REGISTRY_HELP_URL = "https://kind.sigs.k8s.io/docs/user/local-registry/"

# Ingress: Contour, with its Envoy DaemonSet listening on hostPort 80 of the node, which
# kind-config.yaml publishes on 127.0.0.1:8080. Chosen over kind's cloud-provider-kind
# because that one runs as a separate privileged process on the host (sudo on macOS) and
# publishes Ingresses on a Docker network IP or, on macOS/Windows, an ephemeral port:
# no fixed URL. ingress-nginx, the old default, was retired in March 2026.
# Contour v1.33.6 supports Kubernetes 1.32-1.34 (its compatibility matrix).
CONTOUR_VERSION = "v1.33.6"
CONTOUR_MANIFEST_URL = (
    "https://raw.githubusercontent.com/projectcontour/contour/"
    f"{CONTOUR_VERSION}/examples/render/contour.yaml"
)
CONTOUR_MANIFEST_SHA256 = "1d2e45c4bb31bea93085231d9b50e2c95ad92432253872b683e672eb7cecbbd8"
CONTOUR_IMAGE = f"ghcr.io/projectcontour/contour:{CONTOUR_VERSION}"
CONTOUR_NAMESPACE = "projectcontour"
CONTOUR_KUBERNETES_MINORS = (32, 33, 34)

# Oldest versions `up` accepts, and where to get a newer one. kind: the node image in
# kind-config.yaml was released with kind v0.32.0 (kind supports node images with the
# release they ship with). tilt: the Tiltfile uses ci_settings(readiness_timeout=...),
# new in v0.35.0. kubectl: within one minor of the node's Kubernetes (version skew policy).
MINIMUM_KIND = (0, 32, 0)
MINIMUM_TILT = (0, 35, 0)
INSTALL_URLS = {
    "docker": "https://docs.docker.com/get-started/get-docker/",
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/#kubectl",
    "tilt": "https://docs.tilt.dev/install.html",
}

# Linux only (the directory exists nowhere else): kind nodes and Tilt's file watching
# share the host's inotify limits, which distribution defaults set too low (kind's
# known issues: "too many open files"). The values are kind's recommendation.
INOTIFY_DIR = Path("/proc/sys/fs/inotify")
INOTIFY_MINIMUMS = {"max_user_watches": 524288, "max_user_instances": 512}


# ---------------------------------------------------------------------------------
# What kind-config.yaml says


def load_kind_config(path: Path | None = None) -> dict:
    return yaml.safe_load((path or KIND_CONFIG).read_text())


def kube_context(config: dict) -> str:
    """kind names the kubectl context of cluster NAME `kind-NAME`."""
    return f"kind-{config['name']}"


def node_kubernetes_version(config: dict) -> tuple[int, int, int]:
    """The Kubernetes version of the (first) node image, from its tag: kindest/node:v1.34.8@..."""
    image = config["nodes"][0]["image"]
    match = re.search(r":v(\d+)\.(\d+)\.(\d+)@sha256:", image)
    if match is None:
        raise Exit(
            f"error: kind-config.yaml: node image {image!r} is not pinned as :vX.Y.Z@sha256:"
        )
    return _version_tuple(match)


def registry_config_dir(config: dict) -> str:
    """The containerd `config_path` set in kind-config.yaml: where per-registry hosts.toml live."""
    for patch in config.get("containerdConfigPatches", []):
        registry = tomllib.loads(patch)["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
        return registry["config_path"]
    raise Exit("error: kind-config.yaml sets no containerd registry config_path")


def host_ports(config: dict) -> list[int]:
    return [
        mapping["hostPort"]
        for node in config["nodes"]
        for mapping in node.get("extraPortMappings", [])
    ]


# ---------------------------------------------------------------------------------
# What `up` writes


def registry_hosts_toml() -> str:
    """containerd host config: pulls of localhost:5001/* go to the registry container."""
    return f'[host."http://{REGISTRY_NAME}:{REGISTRY_CONTAINER_PORT}"]\n'


def registry_hosting_configmap() -> str:
    """The KEP-1755 ConfigMap; Tilt reads `host` from it and pushes images there."""
    hosting = {"host": f"localhost:{REGISTRY_PORT}", "help": REGISTRY_HELP_URL}
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": yaml.safe_dump(hosting, sort_keys=False)},
    }
    return yaml.safe_dump(configmap, sort_keys=False)


def registry_run_command() -> list[str]:
    return [
        "docker", "run", "--detach", "--restart=always",
        "--publish", f"127.0.0.1:{REGISTRY_PORT}:{REGISTRY_CONTAINER_PORT}",
        "--network", "bridge", "--name", REGISTRY_NAME, REGISTRY_IMAGE,
    ]  # fmt: skip


# ---------------------------------------------------------------------------------
# Running commands


def _query(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a read-only command quietly; the caller looks at returncode and stdout."""
    # argv lists of fixed tool names, no shell: nothing to inject into.
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)  # noqa: S603


def _change(*argv: str, stdin: str | None = None) -> str:
    """Run a command that changes something, showing it; stop `up` if it fails."""
    print(f"  $ {' '.join(argv)}", flush=True)
    result = subprocess.run(  # noqa: S603 (argv list, no shell)
        argv,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    output = (result.stdout + result.stderr).strip()
    if output:
        print("    " + output.replace("\n", "\n    "), flush=True)
    if result.returncode != 0:
        raise Exit(f"error: `{' '.join(argv)}` failed (exit {result.returncode}), see above")
    return result.stdout


def _version_tuple(match: re.Match[str]) -> tuple[int, int, int]:
    return int(match[1]), int(match[2]), int(match[3])


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


# ---------------------------------------------------------------------------------
# Preflight


def _installed_version(tool: str) -> tuple[int, int, int] | None:
    if tool == "kubectl":
        result = _query("kubectl", "version", "--client", "--output=json")
        text = json.loads(result.stdout or "{}").get("clientVersion", {}).get("gitVersion", "")
    else:  # "kind v0.32.0 go1.24 linux/amd64" / "v0.37.6, built 2026-07-29"
        text = _query(tool, "version").stdout
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    return _version_tuple(match) if match else None


def _inotify_problem() -> str | None:
    if not INOTIFY_DIR.is_dir():
        return None
    low = {
        name: current
        for name, minimum in INOTIFY_MINIMUMS.items()
        if (current := int((INOTIFY_DIR / name).read_text())) < minimum
    }
    if not low:
        return None
    found = ", ".join(f"{name}={value}" for name, value in low.items())
    settings = " ".join(f"fs.inotify.{name}={INOTIFY_MINIMUMS[name]}" for name in low)
    return (
        f"error: inotify limits too low for kind and Tilt ({found}). "
        f"Fix: sudo sysctl {settings} (persist it in /etc/sysctl.d/99-kind.conf)"
    )


def preflight(tools: list[str], config: dict, *, for_up: bool = True) -> None:
    """Check everything the task needs before touching anything; report every problem.

    For `up` also: the inotify limits, and the host ports of what it will create.
    """
    problems = []
    present = []
    for tool in tools:
        try:
            require(tool, f"install it: {INSTALL_URLS[tool]}")
            present.append(tool)
        except Exit as missing:
            problems.append(str(missing.message))

    docker_runs = "docker" in present and (
        _query("docker", "info", "--format", "{{.ServerVersion}}").returncode == 0
    )
    if "docker" in present and not docker_runs:
        problems.append(
            "error: Docker is not running (`docker info` failed). "
            "Fix: start Docker Desktop, or `sudo systemctl start docker` on Linux"
        )

    node_major, node_minor, _ = node_kubernetes_version(config)
    minimums = {
        "kind": MINIMUM_KIND,
        "tilt": MINIMUM_TILT,
        "kubectl": (node_major, node_minor - 1, 0),
    }
    for tool in (tool for tool in present if tool in minimums):
        version = _installed_version(tool)
        if version is None or version < minimums[tool]:
            found = _version_text(version) if version else "an unknown version"
            problems.append(
                f"error: {tool} {found} is too old, {_version_text(minimums[tool])} or newer "
                f"is needed. Fix: upgrade it: {INSTALL_URLS[tool]}"
            )

    if for_up and (inotify := _inotify_problem()) is not None:
        problems.append(inotify)
    if for_up and docker_runs and "kind" in present:
        problems += _busy_port_problems(config)

    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        raise Exit(f"preflight failed: {len(problems)} problem(s), nothing was changed", code=1)


def _busy_port_problems(config: dict) -> list[str]:
    """Host ports that what `up` is about to create would publish, but something holds."""
    wanted = []
    if _registry_state() == "absent":
        wanted.append(
            (REGISTRY_PORT, "the local image registry", "REGISTRY_PORT in ops/cluster.py")
        )
    if config["name"] not in _clusters():
        wanted += [
            (port, "the cluster's ingress", "its hostPort in kind-config.yaml")
            for port in host_ports(config)
        ]
    problems = []
    for port, user, setting in wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                problems.append(
                    f"error: port {port} on 127.0.0.1 is in use, {user} needs it. Fix: stop "
                    f"what listens there (`lsof -i :{port}`), or change {setting}"
                )
    return problems


# ---------------------------------------------------------------------------------
# The steps of `up`


def _registry_state() -> str:
    """'running', 'stopped' or 'absent'."""
    result = _query("docker", "inspect", "--format", "{{.State.Running}}", REGISTRY_NAME)
    if result.returncode != 0:
        return "absent"
    return "running" if result.stdout.strip() == "true" else "stopped"


def ensure_registry() -> None:
    state = _registry_state()
    print(f"• registry {REGISTRY_NAME} on localhost:{REGISTRY_PORT}: {state}", flush=True)
    if state == "stopped":
        _change("docker", "start", REGISTRY_NAME)
    elif state == "absent":
        _change(*registry_run_command())


def _clusters() -> list[str]:
    return _query("kind", "get", "clusters").stdout.split()


def ensure_cluster(config: dict) -> None:
    name = config["name"]
    exists = name in _clusters()
    print(f"• kind cluster {name}: {'exists' if exists else 'absent'}", flush=True)
    if exists:
        return
    # --name wins over a KIND_CLUSTER_NAME in the environment, which would otherwise
    # override the config's name and leave the cluster under a context Tilt refuses.
    _change(
        "kind", "create", "cluster", "--name", name,
        "--config", str(KIND_CONFIG), "--wait", "120s",
    )  # fmt: skip


def configure_registry_on_nodes(config: dict) -> None:
    host_dir = f"{registry_config_dir(config)}/localhost:{REGISTRY_PORT}"
    hosts_file = f"{host_dir}/hosts.toml"
    wanted = registry_hosts_toml()
    nodes = _query("kind", "get", "nodes", "--name", config["name"]).stdout.split()
    for node in nodes:
        current = _query("docker", "exec", node, "cat", hosts_file)
        if current.returncode == 0 and current.stdout == wanted:
            print(f"• {node}: {hosts_file} up to date", flush=True)
            continue
        print(f"• {node}: writing {hosts_file}", flush=True)
        _change("docker", "exec", node, "mkdir", "-p", host_dir)
        _change(
            "docker", "exec", "--interactive", node, "cp", "/dev/stdin", hosts_file, stdin=wanted
        )


def connect_registry_to_cluster_network() -> None:
    network = _query(
        "docker", "inspect", "--format", f"{{{{json .NetworkSettings.Networks.{KIND_NETWORK}}}}}",
        REGISTRY_NAME,
    ).stdout.strip()  # fmt: skip
    connected = network not in ("", "null")
    print(f"• registry on the {KIND_NETWORK} network: {'yes' if connected else 'no'}", flush=True)
    if not connected:
        _change("docker", "network", "connect", KIND_NETWORK, REGISTRY_NAME)


def publish_registry_hosting(context: str) -> None:
    print("• ConfigMap kube-public/local-registry-hosting", flush=True)
    _change("kubectl", "--context", context, "apply", "-f", "-", stdin=registry_hosting_configmap())


def download_contour_manifest() -> str:
    with urllib.request.urlopen(CONTOUR_MANIFEST_URL, timeout=60) as response:  # noqa: S310 (pinned https URL)
        manifest = response.read()
    digest = hashlib.sha256(manifest).hexdigest()
    if digest != CONTOUR_MANIFEST_SHA256:
        raise Exit(
            f"error: {CONTOUR_MANIFEST_URL} has sha256 {digest}, expected "
            f"{CONTOUR_MANIFEST_SHA256}. Fix: check your network/proxy; if Contour "
            "republished it, update CONTOUR_MANIFEST_SHA256 in ops/cluster.py",
            code=1,
        )
    return manifest.decode()


def ensure_ingress_controller(context: str) -> None:
    installed = _query(
        "kubectl", "--context", context, "--namespace", CONTOUR_NAMESPACE,
        "get", "deployment", "contour",
        "--output", "jsonpath={.spec.template.spec.containers[0].image}",
    ).stdout.strip()  # fmt: skip
    print(f"• ingress controller Contour {CONTOUR_VERSION}: {installed or 'absent'}", flush=True)
    if installed != CONTOUR_IMAGE:
        # Server-side apply: Contour's CRDs are too large for the client-side
        # last-applied annotation.
        _change(
            "kubectl", "--context", context, "apply", "--server-side", "-f", "-",
            stdin=download_contour_manifest(),
        )  # fmt: skip
    for workload in ("deployment/contour", "daemonset/envoy"):
        _change(
            "kubectl", "--context", context, "--namespace", CONTOUR_NAMESPACE,
            "rollout", "status", workload, "--timeout=300s",
        )  # fmt: skip


# ---------------------------------------------------------------------------------
# Tasks


@task(
    help={
        "no_tilt": "stop once the cluster, registry and ingress are ready (don't run `tilt up`)",
    }
)
def up(c, no_tilt=False):
    """Create the kind cluster, local registry and ingress if absent, then `tilt up`.

    Arguments after `--` go to the Tiltfile: `invoke up -- --only-web`.
    """
    config = load_kind_config()
    context = kube_context(config)
    preflight(["docker", "kind", "kubectl"] + ([] if no_tilt else ["tilt"]), config)

    ensure_registry()
    ensure_cluster(config)
    configure_registry_on_nodes(config)
    connect_registry_to_cluster_network()
    publish_registry_hosting(context)
    ensure_ingress_controller(context)

    if no_tilt:
        print(f"\nCluster ready (kubectl context {context}). Start the app with: tilt up")
        return
    tilt = ["tilt", "up", "--context", context]
    if c.remainder:
        tilt += ["--", *shlex.split(c.remainder)]
    print(f"\n$ {' '.join(tilt)}", flush=True)
    # Not through invoke's runner: Tilt gets the terminal itself (its UI, Ctrl-C).
    tilt_process = subprocess.Popen(tilt)  # noqa: S603 (argv list, no shell)
    while True:
        try:
            code = tilt_process.wait()
            break
        except KeyboardInterrupt:
            continue  # Tilt received the same Ctrl-C: let it shut down cleanly
    if code != 0:
        raise Exit(code=code)


@task
def down(c):
    """Delete the kind cluster and the local registry (a second run finds nothing to do)."""
    config = load_kind_config()
    preflight(["docker", "kind"], config, for_up=False)
    name = config["name"]
    if name in _clusters():
        _change("kind", "delete", "cluster", "--name", name)
    else:
        print(f"• kind cluster {name}: absent")
    if _registry_state() != "absent":
        _change("docker", "rm", "--force", "--volumes", REGISTRY_NAME)
    else:
        print(f"• registry {REGISTRY_NAME}: absent")
