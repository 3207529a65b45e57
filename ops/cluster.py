"""The local kind cluster: `invoke up` creates it and its registry from cluster.yaml (ctlptl),
adds the ingress controller and runs Tilt; `invoke down` deletes them; `invoke cluster.check`
runs the whole loop end to end, as CI's `cluster` job does. Pins and checksums: versions.yaml.
"""

import io
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml
from invoke import Collection, task
from invoke.exceptions import Exit, UnexpectedExit

from ops import k8s
from ops.tools import REPO_ROOT, VERSIONS, download, fetch, git

CLUSTER_FILE = REPO_ROOT / "cluster.yaml"
CLUSTER_TOOLS = tuple(VERSIONS["tools"])  # kind, ctlptl, tilt, kubectl
# kind's nodes and Tilt's file watching share the host's inotify limits (Linux), which
# distributions set too low ("too many open files" in kind's known issues); kind's values.
INOTIFY_DIR = Path("/proc/sys/fs/inotify")
INOTIFY_MINIMUMS = {"max_user_watches": 524288, "max_user_instances": 512}
DOCKER_MEMORY_GIB = 6  # PostgreSQL, Valkey, the app's processes, tracing; Argo CD in `check`
LIVE_UPDATE_LOG = REPO_ROOT / ".dev" / "cluster-tilt-up.log"
# What `check` asks Argo CD to sync: the local overlay at a commit, with Tilt's image.
APPLICATION = """\
{apiVersion: argoproj.io/v1alpha1, kind: Application,
 metadata: {name: todo-local, namespace: argocd},
 spec: {project: default, destination: {server: "https://kubernetes.default.svc", namespace: todo},
  source: {repoURL: %s, targetRevision: %s, path: kustomize/overlays/local,
           kustomize: {images: [%s]}},
  syncPolicy: {automated: {}, syncOptions: [CreateNamespace=true], retry: {limit: 3}}}}
"""


def cluster_config() -> dict[str, dict]:
    """cluster.yaml's documents by kind: "Registry" and "Cluster"."""
    return {doc["kind"]: doc for doc in yaml.safe_load_all(CLUSTER_FILE.read_text())}


def ingress_port() -> int:
    """The host port on which kind publishes the node's port 80, the ingress controller's."""
    [node] = cluster_config()["Cluster"]["kindV1Alpha4Cluster"]["nodes"]
    return next(m["hostPort"] for m in node["extraPortMappings"] if m["containerPort"] == 80)


def run(c, command: str, stdin: str = "") -> None:
    """A command that changes something, shown as it runs; its failure stops the task. `stdin`
    goes through a file: invoke feeds a string to a command's input a byte at a time."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        file.write(stdin)
        file.flush()
        c.run(f"{command} < {file.name}" if stdin else command, echo=True, in_stream=False)


def ask(c, command: str) -> str:
    """What a command that only looks prints; "" when it fails."""
    result = c.run(command, hide=True, warn=True, in_stream=False)
    return result.stdout.strip() if result.ok else ""


def image_of(c, kubectl: str, namespace: str, deployment: str) -> str:
    jsonpath = "'jsonpath={.spec.template.spec.containers[0].image}'"
    return ask(c, f"{kubectl} -n {namespace} get deployment {deployment} -o {jsonpath}")


def version(text: str) -> tuple[int, ...]:
    return tuple(map(int, re.findall(r"\d+", text)[:3]))


def problems(c, tools=CLUSTER_TOOLS) -> list[str]:
    """Each problem that would stop `up`, with its fix; `invoke doctor` prints them too."""
    found = []
    for tool in tools:
        pin = VERSIONS["tools"][tool]
        fix = f"Fix: `uv run invoke cluster.tools`, or see {pin['install']}"
        if not shutil.which(tool):
            found.append(f"error: `{tool}` is not installed. {fix}")
            continue
        have = version(ask(c, f"{tool} version" + " --client" * (tool == "kubectl")))
        if have < version(pin["minimum"]):
            found.append(
                f"error: {tool} {'.'.join(map(str, have)) or '(unknown version)'} is too old, "
                f"{pin['minimum']} or newer is needed (CI uses {pin['version']}). {fix}"
            )
    if not shutil.which("docker"):
        found.append("error: `docker` is not installed. Fix: https://docs.docker.com/get-docker/")
    elif not (memory := ask(c, "docker info --format '{{.MemTotal}}'")):
        found.append(
            "error: Docker is not running (`docker info` failed). Fix: start Docker Desktop, "
            "or `sudo systemctl start docker` on Linux"
        )
    elif int(memory) < DOCKER_MEMORY_GIB * 2**30:
        found.append(
            f"error: Docker has {int(memory) / 2**30:.1f} GiB of memory, the cluster needs "
            f"{DOCKER_MEMORY_GIB} GiB. Fix: Docker Desktop: Settings > Resources > Memory; "
            "elsewhere a machine with more memory"
        )
    for name, least in INOTIFY_MINIMUMS.items() if INOTIFY_DIR.is_dir() else ():
        if (value := int((INOTIFY_DIR / name).read_text())) < least:
            found.append(
                f"error: inotify's {name} is {value}, too low for kind and Tilt. Fix: sudo "
                f"sysctl fs.inotify.{name}={least} (persist it in /etc/sysctl.d/99-kind.conf)"
            )
    return found


def create_cluster(c, tools=CLUSTER_TOOLS) -> str:
    """The preflight, then the cluster, its registry and the ingress controller; the context."""
    if found := problems(c, tools):
        print("\n".join(found), file=sys.stderr)
        raise Exit(f"preflight failed: {len(found)} problem(s), nothing was changed", code=1)
    run(c, f"ctlptl apply -f {CLUSTER_FILE}")
    context = cluster_config()["Cluster"]["name"]
    kubectl = f"kubectl --context {context}"
    contour = VERSIONS["manifests"]["contour"]
    if image_of(c, kubectl, "projectcontour", "contour").rpartition(":")[2] != contour["version"]:
        docs = k8s.documents(download(contour["url"], contour["sha256"]))
        [deployment] = [doc for doc in docs if k8s.object_id(doc) == "Deployment/contour"]
        # The address Contour writes into each Ingress's status: kind has no load balancer,
        # and Argo CD counts an Ingress without one as still progressing.
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        args.append("--ingress-status-address=127.0.0.1")
        # Server-side: Contour's CRDs are too large for client-side apply's annotation.
        run(c, f"{kubectl} apply --server-side -f -", stdin=yaml.safe_dump_all(docs))
    for workload in ("deployment/contour", "daemonset/envoy"):
        run(c, f"{kubectl} -n projectcontour rollout status {workload} --timeout=5m")
    return context


@task(help={"no_tilt": "stop once the cluster, registry and ingress are ready (no `tilt up`)"})
def up(c, no_tilt=False):
    """Create the kind cluster, its registry and ingress if absent (ctlptl), then `tilt up`.

    Arguments after `--` go to the Tiltfile: `invoke up -- --only-web`.
    """
    context = create_cluster(c, [t for t in CLUSTER_TOOLS if not (no_tilt and t == "tilt")])
    if no_tilt:
        print(f"\nCluster ready (kubectl context {context}). Start the app with: tilt up")
        return
    argv = ["tilt", "up", "--context", context]
    argv += ["--", *shlex.split(c.remainder)] if c.remainder else []
    print(f"$ {shlex.join(argv)}", flush=True)
    os.execvp(argv[0], argv)  # noqa: S606 (Tilt takes over: its UI, Ctrl-C and exit code)


@task
def down(c):
    """Delete the kind cluster and its registry (ctlptl; a second run finds nothing to do)."""
    run(c, f"ctlptl delete -f {CLUSTER_FILE} --ignore-not-found")


@task(help={"bin_dir": "where to put them (default ~/.local/bin)"})
def tools(c, bin_dir="~/.local/bin"):
    """Install kind, ctlptl, Tilt and kubectl for this machine at versions.yaml's pins, each
    checked by its sha256 (CI's cluster job; `invoke setup --cluster-tools`)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    machine = f"{platform.system()}-{arch}".lower()  # as versions.yaml names it: linux-amd64
    (bin_dir := Path(bin_dir).expanduser()).mkdir(parents=True, exist_ok=True)
    for name, tool in VERSIONS["tools"].items():
        if not (pin := tool["downloads"].get(machine)):
            raise Exit(f"error: versions.yaml has no {name} for {machine}", code=1)
        body = fetch(pin["url"], pin["sha256"])
        if pin["url"].endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(body)) as archive:
                body = archive.extractfile(name).read()
        (bin_dir / name).write_bytes(body)
        (bin_dir / name).chmod(0o755)
        print(f"{name} {tool['version']} -> {bin_dir / name}", flush=True)


def time_live_update(c, context: str, host: str, port: int) -> None:
    """bench.loop's edit-to-served times of a template, a view and a task through live_update,
    under a `tilt up` of its own (`tilt ci` has exited); over the budgets + 1 s fails."""
    from bench import loop

    LIVE_UPDATE_LOG.parent.mkdir(exist_ok=True)
    argv = ["tilt", "up", "--context", context, "--stream"]
    print(f"$ {shlex.join(argv)} > {LIVE_UPDATE_LOG}", flush=True)
    with LIVE_UPDATE_LOG.open("w") as log:
        tilt = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)  # noqa: S603
    try:
        run(c, "tilt wait --for=condition=Ready uiresource/web uiresource/worker --timeout=10m")
        target = loop.Target(REPO_ROOT, f"http://127.0.0.1:{port}", host)
        times = loop.live_update(target, ("template", "view", "task"), 5)
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
    revision = revision or git("rev-parse", "HEAD")
    context = create_cluster(c)
    kubectl = f"kubectl --context {context}"

    run(c, f"tilt ci --context {context}")
    [ingress] = [d for d in k8s.documents(k8s.render(k8s.LOCAL_OVERLAY)) if d["kind"] == "Ingress"]
    host, port = ingress["spec"]["rules"][0]["host"], ingress_port()
    run(
        c,
        f"pytest tests/browser/test_journey.py --base-url http://{host}:{port} -p no:cacheprovider",
    )
    time_live_update(c, context, host, port)
    image = image_of(c, kubectl, "todo", "web")  # what Tilt built and pushed
    run(c, f"tilt down --context {context}")

    k8s.crds(c)
    crds = " ".join(f"-f {k8s.crd_schemas_dir() / path}" for path in k8s.pinned_crd_files())
    run(c, f"{kubectl} apply --server-side {crds}")
    argocd = VERSIONS["manifests"]["argo-cd"]
    namespace = "{apiVersion: v1, kind: Namespace, metadata: {name: argocd}}\n---\n"
    # --force-conflicts: Argo CD's manifest holds its CRDs too, applied just before.
    install = f"{kubectl} -n argocd apply --server-side --force-conflicts -f -"
    run(c, install, stdin=namespace + download(argocd["url"], argocd["sha256"]))
    run(c, f"{kubectl} -n argocd wait deployment --all --for=condition=Available --timeout=5m")
    # The cloud overlays hold no Namespace (Argo CD creates it): their dry run needs the
    # `todo` namespace of the local overlay, which `tilt down` leaves in place by default.
    for target in k8s.CLOUD_OVERLAYS + k8s.ARGOCD_TARGETS:
        run(c, f"{kubectl} apply --dry-run=server -f -", stdin=k8s.render(target))

    values = (json.dumps(repo_url), json.dumps(revision), json.dumps(f"todo={image}"))
    run(c, f"{kubectl} apply -f -", stdin=APPLICATION % values)
    try:
        for field, wanted in (("sync", "Synced"), ("health", "Healthy")):
            condition = f"--for=jsonpath='{{.status.{field}.status}}'={wanted}"
            run(c, f"{kubectl} -n argocd wait application/todo-local {condition} --timeout=10m")
    except UnexpectedExit:  # show why: the sync operation's and each resource's status
        print(ask(c, f"{kubectl} -n argocd get application todo-local -o 'jsonpath={{.status}}'"))
        raise
    print(f"\ncluster.check passed: {revision[:12]} is Synced and Healthy in Argo CD")


ns = Collection("cluster", check, tools)
