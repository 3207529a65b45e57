"""`invoke up`, `invoke down` and `invoke cluster.check` against recording fakes of docker,
kind, ctlptl, kubectl, tilt, pytest and git on PATH: the commands they run, in order, with
their arguments; and the preflight, which reports every problem at once before anything
changes. The real run of these steps is CI's `cluster` job."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import pytest
import yaml
from invoke import Context
from invoke.exceptions import Exit, UnexpectedExit

from ops import cluster, k8s, prerequisites, tools
from tests.fakes import FakeTools, install

from .fake_cluster_tools import WEB_IMAGE

TOOLS = ("docker", "kind", "ctlptl", "kubectl", "tilt", "pytest", "git")
REAL_PATH = os.environ["PATH"]
PINNED = {tool: pin["version"][1:] for tool, pin in cluster.VERSIONS["tools"].items()}
CONTOUR = cluster.VERSIONS["manifests"]["contour"]
# The two objects of Contour's manifest that `up` changes or waits for.
CONTOUR_MANIFEST = f"""\
kind: Namespace
metadata: {{name: projectcontour}}
---
kind: Deployment
metadata: {{name: contour, namespace: projectcontour}}
spec:
  template:
    spec:
      containers: [{{args: [serve], image: "ghcr.io/projectcontour/contour:{CONTOUR["version"]}"}}]
"""


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {target: k8s.render(target) for target in (*k8s.OVERLAYS, *k8s.ARGOCD_TARGETS)}


@pytest.fixture
def fakes(tmp_path, monkeypatch, rendered) -> FakeTools:
    """The fakes alone on PATH at the pinned versions, nothing created yet; inotify limits that
    suffice; downloads and Tilt's exec recorded."""
    # Rendered before PATH holds only the fakes; rendering is tested in tests/k8s.
    monkeypatch.setattr(k8s, "render", rendered.__getitem__)
    state = {"docker_running": True, "versions": PINNED, "created": False, "contour": None}
    fakes = install(tmp_path, Path(__file__).with_name("fake_cluster_tools.py"), TOOLS, state)
    (fakes.bin_dir / "bash").symlink_to(shutil.which("bash"))  # invoke's c.run shell
    monkeypatch.setenv("PATH", str(fakes.bin_dir))
    for name, value in fakes.env.items():
        monkeypatch.setenv(name, value)
    inotify = tmp_path / "inotify"
    inotify.mkdir()
    for name, minimum in cluster.INOTIFY_MINIMUMS.items():
        (inotify / name).write_text(f"{minimum}\n")
    monkeypatch.setattr(cluster, "INOTIFY_DIR", inotify)
    fakes.downloads = []
    fakes.exec = []

    def download(url, sha256):
        fakes.downloads.append(url)
        return CONTOUR_MANIFEST if url == CONTOUR["url"] else f"# {url}\n"

    monkeypatch.setattr(cluster, "download", download)
    monkeypatch.setattr(cluster.os, "execvp", lambda file, argv: fakes.exec.append(argv))
    # The live_update timing edits the checkout and polls the ingress (tests/bench covers it).
    fakes.timed = []

    def live_update(target, names, tries):
        fakes.timed.append((target, names, tries))
        return {name: [0.2] * tries for name in names}

    monkeypatch.setattr("bench.loop.live_update", live_update)
    return fakes


def commands(calls: list[dict]) -> list[str]:
    """What ran, oldest first, without the questions: versions, Docker's state, the clusters;
    nor the `tilt up` that runs beside the steps during the live_update timing."""
    questions = (["version"], ["info"], ["get", "clusters"], ["config", "current-context"], ["up"])
    return [
        " ".join([call["tool"], *call["args"]])
        for call in calls
        if not any(call["args"][: len(question)] == question for question in questions)
    ]


def creates_the_cluster() -> list[str]:
    context = "kubectl --context kind-todo"
    return [
        f"ctlptl apply -f {cluster.CLUSTER_FILE}",
        f"{context} -n projectcontour get deployment contour -o "
        "jsonpath={.spec.template.spec.containers[0].image}",
        f"{context} apply --server-side -f -",
        f"{context} -n projectcontour rollout status deployment/contour --timeout=5m",
        f"{context} -n projectcontour rollout status daemonset/envoy --timeout=5m",
    ]


def test_up_creates_the_cluster_with_ctlptl_adds_the_ingress_then_becomes_tilt(fakes):
    cluster.up(Context(remainder="--only-web --web-port 8001"))

    assert commands(fakes.calls()) == creates_the_cluster()
    assert fakes.downloads == [CONTOUR["url"]]
    assert fakes.exec == [
        ["tilt", "up", "--context", "kind-todo", "--", "--only-web", "--web-port", "8001"]
    ]


def test_the_ingress_controller_reports_an_address_and_is_applied_once(fakes):
    cluster.up(Context(), no_tilt=True)
    [apply] = [c for c in fakes.calls() if "--server-side" in c["args"]]
    [contour] = [d for d in yaml.safe_load_all(apply["stdin"]) if d["kind"] == "Deployment"]
    args = contour["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["serve", "--ingress-status-address=127.0.0.1"]

    cluster.up(Context(), no_tilt=True)  # ctlptl reconciles; Contour is already there
    assert not [c for c in commands(fakes.calls()) if "apply" in c and "ctlptl" not in c]
    assert fakes.exec == []


def test_down_deletes_the_cluster_and_its_registry_with_ctlptl(fakes):
    cluster.down(Context())
    assert commands(fakes.calls()) == [
        f"ctlptl delete -f {cluster.CLUSTER_FILE} --ignore-not-found"
    ]


def test_every_preflight_problem_is_reported_at_once_and_nothing_changes(fakes, capsys):
    fakes.remove("tilt")
    fakes.update(versions=PINNED | {"kind": "0.31.0"}, docker_running=False)
    (cluster.INOTIFY_DIR / "max_user_instances").write_text("128\n")
    with pytest.raises(Exit, match="4 problem"):
        cluster.up(Context())

    kind, tilt = cluster.VERSIONS["tools"]["kind"], cluster.VERSIONS["tools"]["tilt"]
    assert capsys.readouterr().err.splitlines() == [
        f"error: kind 0.31.0 is too old, {kind['minimum']} or newer is needed (CI uses "
        f"{kind['version']}). Fix: `uv run invoke cluster.tools`, or see {kind['install']}",
        f"error: `tilt` is not installed. Fix: `uv run invoke cluster.tools`, or see "
        f"{tilt['install']}",
        "error: Docker is not running (`docker info` failed). Fix: start Docker Desktop, or "
        "`sudo systemctl start docker` on Linux",
        "error: inotify's max_user_instances is 128, too low for kind and Tilt. Fix: sudo "
        "sysctl fs.inotify.max_user_instances=512 (persist it in /etc/sysctl.d/99-kind.conf)",
    ]
    assert commands(fakes.calls()) == []


def check_steps() -> list[str]:
    kubectl = "kubectl --context kind-todo"
    url = f"http://todo.localhost:{cluster.ingress_port()}"
    return [
        *creates_the_cluster(),
        "tilt ci --context kind-todo",
        f"pytest tests/browser/test_journey.py --base-url {url} -p no:cacheprovider",
        "tilt wait --for=condition=Ready uiresource/web uiresource/worker --timeout=10m",
        f"{kubectl} -n todo get deployment web -o "
        "jsonpath={.spec.template.spec.containers[0].image}",
        "tilt down --context kind-todo",
        f"{kubectl} apply --server-side "
        + " ".join(f"-f {k8s.crd_schemas_dir() / path}" for path in k8s.pinned_crd_files()),
        f"{kubectl} -n argocd apply --server-side --force-conflicts -f -",
        f"{kubectl} -n argocd wait deployment --all --for=condition=Available --timeout=5m",
        *[f"{kubectl} apply --dry-run=server -f -"] * 8,
        f"{kubectl} apply -f -",
        f"{kubectl} -n argocd wait application/todo-local "
        "--for=jsonpath={.status.sync.status}=Synced --timeout=10m",
        f"{kubectl} -n argocd wait application/todo-local "
        "--for=jsonpath={.status.health.status}=Healthy --timeout=10m",
    ]


def test_check_runs_every_step_in_order_with_what_each_applies(fakes):
    repo_url, revision = "https://github.com/acme/todo", "a" * 40
    cluster.check(Context(), repo_url=repo_url, revision=revision)

    calls = fakes.calls()
    assert commands(calls) == check_steps()
    applied = [call["stdin"] for call in calls if call["stdin"] is not None][1:]  # after Contour
    argocd, *dry_runs, application = applied
    namespace, install = yaml.safe_load_all(argocd)
    assert namespace["metadata"]["name"] == "argocd" and install is None  # the fake's comment
    assert argocd.endswith(f"# {cluster.VERSIONS['manifests']['argo-cd']['url']}\n")
    assert dry_runs == [k8s.render(t) for t in (*k8s.CLOUD_OVERLAYS, *k8s.ARGOCD_TARGETS)]
    source = yaml.safe_load(application)["spec"]["source"]
    assert source == {
        "repoURL": repo_url,
        "targetRevision": revision,
        "path": "kustomize/overlays/local",
        "kustomize": {"images": [f"todo={WEB_IMAGE}"]},  # what Tilt built and pushed
    }
    # The live_update timing: under a `tilt up` of its own, through the ingress.
    assert [c["args"] for c in calls if c["args"][:1] == ["up"]] == [
        ["up", "--context", "kind-todo", "--stream"]
    ]
    [(target, names, tries)] = fakes.timed
    assert (names, tries) == (("template", "view", "task"), 5)
    assert (target.root, target.base, target.host) == (
        cluster.REPO_ROOT,
        f"http://127.0.0.1:{cluster.ingress_port()}",
        "todo.localhost",
    )


def test_check_fails_when_an_edit_is_served_later_than_its_budget_plus_a_second(
    fakes, monkeypatch, capsys
):
    times = {"template": [1.4] * 5, "view": [2.4, 2.6, 2.6, 2.6, 2.4], "task": [3.9] * 5}
    monkeypatch.setattr("bench.loop.live_update", lambda target, names, tries: times)
    with pytest.raises(Exit, match="1 live_update budget"):
        cluster.check(Context(), revision="a" * 40)
    assert "FAIL  loop view: median 2.60 s within 2.5 s" in capsys.readouterr().out
    assert commands(fakes.calls())[-1].startswith("tilt wait"), "nothing after the timing"


def test_check_syncs_the_configured_repository_at_head_by_default(fakes):
    cluster.check(Context())

    [application] = [c["stdin"] for c in fakes.calls() if "todo-local" in (c["stdin"] or "")]
    source = yaml.safe_load((k8s.KUSTOMIZE_DIR / "argocd/base/source.yaml").read_text())
    spec = yaml.safe_load(application)["spec"]["source"]
    assert (spec["repoURL"], spec["targetRevision"]) == (source["data"]["repoURL"], "f" * 40)


def test_check_stops_at_the_first_failing_step(fakes):
    fakes.update(failing=["tilt ci"])
    with pytest.raises(UnexpectedExit, match="tilt ci --context kind-todo"):
        cluster.check(Context(), revision="a" * 40)
    assert commands(fakes.calls())[-1] == "tilt ci --context kind-todo"


def test_check_shows_argocd_status_when_the_application_never_gets_healthy(fakes, capsys):
    wait = "kubectl --context kind-todo -n argocd wait application/todo-local"
    fakes.update(failing=[f"{wait} --for=jsonpath={{.status.health"])
    with pytest.raises(UnexpectedExit):
        cluster.check(Context(), revision="a" * 40)
    assert '"health": {"status": "Degraded"}' in capsys.readouterr().out


def test_a_download_whose_checksum_differs_is_refused(tmp_path):
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("kind: ConfigMap\n")
    assert tools.download(manifest.as_uri(), hashlib.sha256(b"kind: ConfigMap\n").hexdigest())
    with pytest.raises(Exit, match=r"versions\.yaml expects 0000"):
        tools.download(manifest.as_uri(), "0" * 64)


# --- invoke doctor: the same checks, plus the test tools and, once made, the kube context ---

TEST_TOOLS = "test tools (`uv run invoke test`; fix: `uv run invoke setup`)"


@pytest.fixture
def doctor_fakes(fakes, monkeypatch):
    """The cluster fakes, and the test tools all present."""
    monkeypatch.setattr(prerequisites, "missing", lambda: [])
    return fakes


def doctor_lines(capsys) -> list[str]:
    with pytest.raises(Exit, match=r"doctor: \d+ problem"):
        prerequisites.doctor(Context())
    return capsys.readouterr().out.splitlines()


def test_doctor_on_a_ready_machine_finds_nothing(doctor_fakes, capsys):
    prerequisites.doctor(Context())
    assert capsys.readouterr().out.splitlines() == [
        f"ok   {TEST_TOOLS}",
        "ok   local cluster (`uv run invoke up`)",
        "doctor: this machine has what the README's paths need",
    ]


def test_doctor_reports_every_problem_with_its_fix_by_section(doctor_fakes, capsys):
    doctor_fakes.remove("tilt")
    doctor_fakes.update(docker_memory=2 * 2**30, versions=PINNED | {"ctlptl": "0.8.0"})
    (cluster.INOTIFY_DIR / "max_user_watches").write_text("8192\n")
    lines = doctor_lines(capsys)
    assert lines[:2] == [f"ok   {TEST_TOOLS}", "FAIL local cluster (`uv run invoke up`)"]
    problems = [line.strip() for line in lines[2:]]
    assert [p.split(" Fix: ")[0] for p in problems] == [
        "error: ctlptl 0.8.0 is too old, v0.9.3 or newer is needed (CI uses v0.9.3).",
        "error: `tilt` is not installed.",
        "error: Docker has 2.0 GiB of memory, the cluster needs 6 GiB.",
        "error: inotify's max_user_watches is 8192, too low for kind and Tilt.",
    ]
    assert all(" Fix: " in problem for problem in problems)


@pytest.mark.skipif(not shutil.which("kubectl"), reason="the real kubectl reads the context")
def test_doctor_names_kubectl_s_context_once_the_cluster_exists(
    doctor_fakes, capsys, tmp_path, monkeypatch
):
    """kubectl is real here, reading a kubeconfig of the test's own."""
    real = shutil.which("kubectl", path=REAL_PATH)
    doctor_fakes.remove("kubectl")
    (doctor_fakes.bin_dir / "kubectl").symlink_to(real)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "other", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "other", "user": {}}],
                "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
                "current-context": "other",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with contextlib.suppress(Exit):  # (the real kubectl may be older than versions.yaml's)
        prerequisites.doctor(Context())
    assert "context" not in capsys.readouterr().out  # no cluster yet: `invoke up` sets it
    doctor_fakes.update(created=True)
    assert doctor_lines(capsys)[-1].strip() == (
        "error: kubectl's current context is other, not kind-todo: plain `kubectl` commands go "
        "elsewhere. Fix: kubectl config use-context kind-todo"
    )
