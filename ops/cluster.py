"""The local kind cluster: `invoke up` creates it and runs Tilt, `invoke down` deletes it, and
`invoke cluster.check` runs the whole loop end to end, as CI's `cluster` job does.

ctlptl creates the cluster and its image registry from cluster.yaml and wires them together
for Tilt; `up` adds a preflight (every problem at once, each with its fix) and the ingress
controller. Versions, download URLs and checksums: versions.yaml.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit

from ops import k8s
from ops.tools import REPO_ROOT, VERSIONS, download, port_in_use, require

CLUSTER_FILE = REPO_ROOT / "cluster.yaml"
DOCKER_INSTALL = "https://docs.docker.com/get-started/get-docker/"
# Linux only: kind's nodes and Tilt's file watching share the host's inotify limits, which
# distributions set too low ("too many open files" in kind's known issues); kind's values.
INOTIFY_DIR = Path("/proc/sys/fs/inotify")
INOTIFY_MINIMUMS = {"max_user_watches": 524288, "max_user_instances": 512}
# kind's node with PostgreSQL, Valkey, the five app processes, the tracing backend (and Argo
# CD for `cluster.check`); the images and Tilt's builds.
DOCKER_MEMORY_GIB, DOCKER_DISK_GIB = 6, 20
CHECK_APPLICATION = "todo-local"  # the Argo CD Application of `cluster.check`
LIVE_UPDATE_LOG = REPO_ROOT / ".dev" / "cluster-tilt-up.log"


def cluster_config() -> dict[str, dict]:
    """cluster.yaml's documents for ctlptl, by kind: "Registry" and "Cluster"."""
    return {doc["kind"]: doc for doc in yaml.safe_load_all(CLUSTER_FILE.read_text())}


def ingress_port() -> int:
    """The host port on which kind publishes the node's port 80, the ingress controller's."""
    nodes = cluster_config()["Cluster"]["kindV1Alpha4Cluster"]["nodes"]
    mappings = [mapping for node in nodes for mapping in node.get("extraPortMappings", [])]
    [port] = [mapping["hostPort"] for mapping in mappings if mapping["containerPort"] == 80]
    return port


def _run(*argv: str, stdin: str | None = None) -> None:
    """Run a command that changes something, showing it and its output; stop if it fails."""
    print(f"$ {shlex.join(argv)}", flush=True)
    if subprocess.run(argv, input=stdin, text=True, check=False).returncode != 0:  # noqa: S603
        raise Exit(f"error: `{shlex.join(argv)}` failed, see above", code=1)


def output(*argv: str) -> str:
    """What a command that only looks prints; empty if it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)  # noqa: S603
    return result.stdout.strip() if result.returncode == 0 else ""


# --- Preflight ----------------------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(map(int, match.groups())) if match else ()


def preflight(tools: list[str], *, for_up: bool = True) -> None:
    """Check all that the task needs before changing anything; report every problem."""
    if found := problems(tools, for_up=for_up):
        print("\n".join(found), file=sys.stderr)
        raise Exit(f"preflight failed: {len(found)} problem(s), nothing was changed", code=1)


def problems(tools: list[str], *, for_up: bool = True) -> list[str]:
    """Each problem (with its fix) that would stop `up` or `down`; `invoke doctor` too."""
    problems, present = [], set()
    for tool in tools:
        pin = VERSIONS["tools"].get(tool, {"install": DOCKER_INSTALL})
        try:
            require(tool, f"install it: {pin['install']}")
        except Exit as missing:
            problems.append(str(missing.message))
            continue
        present.add(tool)
        if tool == "docker" and not output("docker", "info", "--format", "{{.ServerVersion}}"):
            present.remove("docker")
            problems.append(
                "error: Docker is not running (`docker info` failed). Fix: start Docker "
                "Desktop, or `sudo systemctl start docker` on Linux"
            )
        elif "minimum" in pin:
            found = _version(output(tool, "version", *["--client"] * (tool == "kubectl")))
            if found < _version(pin["minimum"]):
                problems.append(
                    f"error: {tool} {'.'.join(map(str, found)) or '(unknown version)'} is too "
                    f"old, {pin['minimum']} or newer is needed (CI uses {pin['version']}). "
                    f"Fix: upgrade it: {pin['install']}"
                )
    if for_up and INOTIFY_DIR.is_dir():
        current = {name: int((INOTIFY_DIR / name).read_text()) for name in INOTIFY_MINIMUMS}
        if low := [name for name, least in INOTIFY_MINIMUMS.items() if current[name] < least]:
            problems.append(
                "error: inotify limits too low for kind and Tilt ("
                + ", ".join(f"{name}={current[name]}" for name in low)
                + "). Fix: sudo sysctl "
                + " ".join(f"fs.inotify.{name}={INOTIFY_MINIMUMS[name]}" for name in low)
                + " (persist it in /etc/sysctl.d/99-kind.conf)"
            )
    if for_up and "docker" in present:
        problems += _docker_resource_problems()
    if for_up and {"docker", "kind"} <= present:  # they tell what `up` will create
        problems += _busy_port_problems()
    return problems


def _docker_resource_problems() -> list[str]:
    """Memory for kind's node and everything Tilt runs in it; disk for the images (Linux: the
    engine's data directory; Docker Desktop keeps it inside its VM, which has its own)."""
    info = output("docker", "info", "--format", "{{.MemTotal}} {{.DockerRootDir}}")
    memory, _, root = info.partition(" ")
    found = []
    if memory.isdigit() and int(memory) < DOCKER_MEMORY_GIB * 2**30:
        found.append(
            f"error: Docker has {int(memory) / 2**30:.1f} GiB of memory, the cluster needs "
            f"{DOCKER_MEMORY_GIB} GiB. Fix: Docker Desktop: Settings > Resources > Memory; "
            "elsewhere a machine with more memory"
        )
    free = shutil.disk_usage(root).free if root and Path(root).is_dir() else None
    if free is not None and free < DOCKER_DISK_GIB * 2**30:
        found.append(
            f"error: {free / 2**30:.1f} GiB free for Docker in {root}, the images need "
            f"{DOCKER_DISK_GIB} GiB. Fix: `docker system prune` (unused images and build "
            "cache), or free space on that disk"
        )
    return found


def _busy_port_problems() -> list[str]:
    """Host ports that the registry or the cluster about to be created needs, but are taken."""
    config = cluster_config()
    registry, cluster_name = config["Registry"], config["Cluster"]["name"]
    wanted = []
    if not output("docker", "inspect", "--format", "{{.Id}}", registry["name"]):
        wanted.append((registry["port"], "the image registry", "the Registry's port"))
    if cluster_name.removeprefix("kind-") not in output("kind", "get", "clusters").split():
        wanted.append((ingress_port(), "the ingress", "the Cluster's hostPort"))
    return [
        f"error: port {port} on 127.0.0.1 is in use, {user} needs it. Fix: stop "
        f"what listens there (`lsof -i :{port}`), or change {setting} in cluster.yaml"
        for port, user, setting in wanted
        if port_in_use(port)
    ]


# --- The cluster ----------------------------------------------------------------------------


def _kubectl(context: str, *args: str, stdin: str | None = None) -> None:
    _run("kubectl", "--context", context, *args, stdin=stdin)


def _image(context: str, namespace: str, deployment: str) -> str:
    where = ("--context", context, "--namespace", namespace, "get", "deployment", deployment)
    return output("kubectl", *where, "-o", "jsonpath={.spec.template.spec.containers[0].image}")


def create_cluster(tools: list[str]) -> str:
    """Preflight, then the cluster, its registry and the ingress controller; the context."""
    preflight(tools)
    _run("ctlptl", "apply", "-f", str(CLUSTER_FILE))
    context = cluster_config()["Cluster"]["name"]
    contour = VERSIONS["manifests"]["contour"]
    image = f"ghcr.io/projectcontour/contour:{contour['version']}"
    installed = _image(context, "projectcontour", "contour") == image
    print(f"• ingress controller {image}: {'installed' if installed else 'applying'}")
    if not installed:
        docs = [doc for doc in yaml.safe_load_all(download(contour["url"], contour["sha256"]))]
        for doc in filter(None, docs):
            if (doc["kind"], doc["metadata"]["name"]) == ("Deployment", "contour"):
                # The address Contour writes into each Ingress's status: kind has no load
                # balancer, and Argo CD counts an Ingress without one as still progressing.
                args = doc["spec"]["template"]["spec"]["containers"][0]["args"]
                args.append("--ingress-status-address=127.0.0.1")
        # Server-side: Contour's CRDs are too large for client-side apply's annotation.
        manifest = yaml.safe_dump_all(filter(None, docs))
        _kubectl(context, "apply", "--server-side", "-f", "-", stdin=manifest)
    for workload in ("deployment/contour", "daemonset/envoy"):
        _kubectl(context, "-n", "projectcontour", "rollout", "status", workload, "--timeout=5m")
    return context


@task(help={"no_tilt": "stop once the cluster, registry and ingress are ready (no `tilt up`)"})
def up(c, no_tilt=False):
    """Create the kind cluster, its registry and ingress if absent (ctlptl), then `tilt up`.

    Arguments after `--` go to the Tiltfile: `invoke up -- --only-web`.
    """
    context = create_cluster(["docker", "kind", "ctlptl", "kubectl", *["tilt"] * (not no_tilt)])
    if no_tilt:
        print(f"\nCluster ready (kubectl context {context}). Start the app with: tilt up")
        return
    tiltfile_args = ["--", *shlex.split(c.remainder)] if c.remainder else []
    argv = ["tilt", "up", "--context", context, *tiltfile_args]
    print(f"$ {shlex.join(argv)}", flush=True)
    # Tilt takes over this process and its terminal: Tilt's UI, Ctrl-C and exit code.
    os.execvp(argv[0], argv)  # noqa: S606


@task
def down(c):
    """Delete the kind cluster and its registry (ctlptl; a second run finds nothing to do)."""
    preflight(["docker", "kind", "ctlptl"], for_up=False)
    _run("ctlptl", "delete", "-f", str(CLUSTER_FILE), "--ignore-not-found")


# --- The end-to-end check ------------------------------------------------------------------


def argocd_application(repo_url: str, revision: str, image: str) -> dict:
    """The local overlay at `revision`, with the image Tilt pushed to the cluster's registry."""
    source = {"repoURL": repo_url, "targetRevision": revision, "path": "kustomize/overlays/local"}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": CHECK_APPLICATION, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": source | {"kustomize": {"images": [f"todo={image}"]}},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "todo"},
            "syncPolicy": {
                "automated": {},
                "syncOptions": ["CreateNamespace=true"],
                "retry": {"limit": 3},
            },
        },
    }


def live_update_timing(context: str, host: str, tries: int = 5) -> None:
    """bench.loop's edit-to-served time through Tilt's live_update, for a template, a view and
    a task, under a `tilt up` of its own (`tilt ci` has exited); over the budgets + 1 s fails.
    The edits go to app/ of this checkout, which is restored afterwards."""
    from bench import loop

    LIVE_UPDATE_LOG.parent.mkdir(exist_ok=True)
    print(f"$ tilt up --context {context} --stream  (output: {LIVE_UPDATE_LOG})", flush=True)
    with LIVE_UPDATE_LOG.open("w") as log:
        tilt = subprocess.Popen(  # noqa: S603
            ["tilt", "up", "--context", context, "--stream"],  # noqa: S607
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        ready = ("--for=condition=Ready", "uiresource/web", "uiresource/worker", "--timeout=10m")
        _run("tilt", "wait", *ready)
        target = loop.Target(REPO_ROOT, f"http://127.0.0.1:{ingress_port()}", host)
        try:
            times = loop.live_update(target, ("template", "view", "task"), tries)
        except loop.LoopError as error:
            raise Exit(f"error: live_update timing: {error}", code=1) from None
    finally:
        tilt.terminate()
        tilt.wait(timeout=60)
    verdicts = loop.report(loop.LoopRun(times, None, os.getloadavg()), print, slack=1.0)
    print(*verdicts, sep="\n")
    if failed := [verdict for verdict in verdicts if not verdict.passed]:
        raise Exit(f"error: {len(failed)} live_update budget(s) + 1 s failed", code=1)


@task(
    help={
        "repo_url": "repository Argo CD clones (default: repoURL of kustomize/argocd/base)",
        "revision": "commit Argo CD syncs, pushed to that repository (default: HEAD)",
    }
)
def check(c, repo_url="", revision=""):
    """The local loop end to end, as CI's `cluster` job runs it; `invoke down` deletes it after.

    `invoke up --no-tilt`; `tilt ci`; the browser journey through the ingress; edits timed
    until served through live_update (bench/loop.py, under `tilt up`); `tilt down`;
    the pinned CRDs and Argo CD; `kubectl apply --dry-run=server` of every cloud overlay and
    Argo CD folder; Argo CD syncs the local overlay at REVISION until Synced and Healthy.
    """
    source = yaml.safe_load((k8s.KUSTOMIZE_DIR / "argocd" / "base" / "source.yaml").read_text())
    repo_url = repo_url or source["data"]["repoURL"]
    if not (revision := revision or output("git", "rev-parse", "HEAD")):
        raise Exit("error: no --revision, and `git rev-parse HEAD` found none", code=1)
    context = create_cluster(["docker", "kind", "ctlptl", "kubectl", "tilt"])

    _run("tilt", "ci", "--context", context)
    [ingress] = [d for d in k8s.documents(k8s.render(k8s.LOCAL_OVERLAY)) if d["kind"] == "Ingress"]
    url = f"http://{ingress['spec']['rules'][0]['host']}:{ingress_port()}"
    _run("pytest", "tests/browser/test_journey.py", "--base-url", url, "-p", "no:cacheprovider")
    live_update_timing(context, ingress["spec"]["rules"][0]["host"])
    if not (image := _image(context, "todo", "web")):
        raise Exit("error: deployment/web has no image after `tilt ci`", code=1)
    _run("tilt", "down", "--context", context)

    crds = [
        download(crd["source"] + name, sha256)
        for crd in VERSIONS["crds"].values()
        for name, sha256 in crd["sha256"].items()
    ]
    _kubectl(context, "apply", "--server-side", "-f", "-", stdin="\n---\n".join(crds))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}
    _kubectl(context, "apply", "-f", "-", stdin=yaml.safe_dump(namespace))
    argocd = VERSIONS["manifests"]["argo-cd"]
    # --force-conflicts: Argo CD's manifest holds its CRDs too, applied just before.
    install = ("apply", "--server-side", "--force-conflicts", "-f", "-")
    _kubectl(context, "-n", "argocd", *install, stdin=download(argocd["url"], argocd["sha256"]))
    available = ("deployment", "--all", "--for=condition=Available", "--timeout=5m")
    _kubectl(context, "-n", "argocd", "wait", *available)
    # The cloud overlays hold no Namespace (Argo CD creates it): their dry run needs the
    # `todo` namespace of the local overlay, which `tilt down` leaves in place by default.
    for target in k8s.CLOUD_OVERLAYS + k8s.ARGOCD_TARGETS:
        _kubectl(context, "apply", "--dry-run=server", "-f", "-", stdin=k8s.render(target))

    application = argocd_application(repo_url, revision, image)
    _kubectl(context, "apply", "-f", "-", stdin=yaml.safe_dump(application))
    try:
        for status, wanted in (("sync", "Synced"), ("health", "Healthy")):
            condition = f"--for=jsonpath={{.status.{status}.status}}={wanted}"
            resource = f"application/{CHECK_APPLICATION}"
            _kubectl(context, "-n", "argocd", "wait", resource, condition, "--timeout=10m")
    except Exit:  # show why: the sync operation's and each resource's status
        status = ("get", "application", CHECK_APPLICATION, "-o", "jsonpath={.status}")
        print(output("kubectl", "--context", context, "-n", "argocd", *status), file=sys.stderr)
        raise
    print(f"\ncluster.check passed: {revision[:12]} is Synced and Healthy in Argo CD")


ns = Collection("cluster", check)
