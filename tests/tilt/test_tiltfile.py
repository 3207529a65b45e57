"""The Tiltfile, executed with stand-ins for Tilt's builtins, checked against the repo:
the local overlay it deploys, kind-config.yaml, the Dockerfile and .dockerignore."""

from __future__ import annotations

import graphlib
import shutil
from pathlib import Path

import pytest

import tasks
from ops import cluster
from ops.tools import REPO_ROOT
from tests.dockerfile import IgnoreRules, context_inputs, copies, stage_chain, workdir

from .conftest import find
from .tiltfile_runner import (
    TRIGGER_MODE_MANUAL,
    WORKLOAD_KINDS,
    TiltfileError,
    TiltRun,
    run_tiltfile,
)

APP_PROCESSES = ("web", "worker", "beat", "celery-exporter")
DATA_SERVICES = ("postgres", "redis")
BUTTONS = ("tests", "lint", "superuser", "readyz")


def image_name(reference: str) -> str:
    """What Tilt matches a build against: the reference without tag or digest."""
    name = reference.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":")[0]


def containers(workload: dict) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def ancestors(graph: dict[str, list[str]], name: str) -> set[str]:
    found, pending = set(), list(graph[name])
    while pending:
        dep = pending.pop()
        if dep not in found:
            found.add(dep)
            pending += graph[dep]
    return found


@pytest.fixture(scope="module")
def build(tilt_run: TiltRun):
    [docker_build] = tilt_run.builds
    return docker_build


# --- Where it deploys ---------------------------------------------------------------------


def test_deploys_to_the_kind_cluster_of_kind_config(tilt_run, kind_config):
    assert tilt_run.allowed_contexts == [cluster.kube_context(kind_config)] == ["kind-todo"]


@pytest.mark.parametrize(
    "context", ["docker-desktop", "kind-kind", "minikube", "do-fra1-todo-prod", "arn:aws:eks:x"]
)
def test_refuses_any_other_context(context):
    with pytest.raises(TiltfileError, match="deploys only to the kind cluster kind-todo"):
        run_tiltfile(REPO_ROOT, context=context)


def test_deploys_exactly_the_tested_local_overlay(tilt_run, local_overlay):
    assert tilt_run.kustomize_dirs == ["kustomize/overlays/local"]
    assert len(tilt_run.yaml_streams) == 1
    assert tilt_run.objects == local_overlay


# --- The image and live update ------------------------------------------------------------


def test_builds_the_image_every_app_workload_runs(tilt_run, build):
    app_images = {
        image_name(container["image"])
        for resource in tilt_run.resources.values()
        if resource.workload and resource.name not in DATA_SERVICES
        for container in containers(resource.workload)
    }
    assert app_images == {build.ref} == {"todo"}


def test_builds_the_dockerfile_dev_target(build, dockerfile_stages):
    assert (build.context, build.dockerfile, build.target) == (".", "Dockerfile", "dev")
    assert "dev" in {stage.name for stage in dockerfile_stages}


def test_syncs_app_code_to_where_the_dev_image_runs_it(build, dockerfile_stages):
    [sync] = build.steps("sync")
    local, remote = sync.paths
    assert (REPO_ROOT / local).is_dir()
    copied_to = {
        source.rstrip("/"): destination.rstrip("/")
        for stage in stage_chain(dockerfile_stages, "dev")
        for sources, destination in copies(stage)
        for source in sources
    }
    assert copied_to[local] == remote == workdir(dockerfile_stages, "dev") == "/app"


def test_dependency_files_fall_back_to_a_full_rebuild(build, dockerfile_stages):
    [fall_back] = build.steps("fall_back_on")
    assert set(fall_back.paths) == {"pyproject.toml", "uv.lock", "Dockerfile"}
    assert all((REPO_ROOT / path).is_file() for path in fall_back.paths)
    # The dev image installs its packages from these two: a sync could not apply them.
    assert {"pyproject.toml", "uv.lock"} <= context_inputs(dockerfile_stages, "dev")
    assert not build.steps("run"), "dependency changes rebuild; nothing is installed in place"


def _filters(build) -> list[IgnoreRules]:
    """Tilt skips a file that any of these excludes: it neither rebuilds nor syncs for it."""
    dockerignore = IgnoreRules.from_file((REPO_ROOT / ".dockerignore").read_text())
    return [IgnoreRules.only(build.only), dockerignore, IgnoreRules(build.ignore)]


def test_the_build_context_holds_everything_the_dev_target_reads(build, dockerfile_stages):
    filters = _filters(build)
    for path in sorted(context_inputs(dockerfile_stages, "dev")) + list(
        build.steps("fall_back_on")[0].paths
    ):
        sample = (
            next((REPO_ROOT / path).rglob("*.py"), None) if (REPO_ROOT / path).is_dir() else None
        )
        for candidate in filter(None, [path, sample and str(sample.relative_to(REPO_ROOT))]):
            assert not any(f.excludes(candidate) for f in filters), f"{candidate} is filtered out"


def test_every_python_file_of_the_app_syncs(build):
    filters = _filters(build)
    sources = [p for p in (REPO_ROOT / "app").rglob("*.py") if "__pycache__" not in p.parts]
    assert sources
    for source in sources:
        relative = str(source.relative_to(REPO_ROOT))
        assert not any(f.excludes(relative) for f in filters), relative


@pytest.mark.parametrize(
    "path",
    [
        "kustomize/base/web.yaml",
        "terraform/do/main.tf",
        "tests/tilt/test_tiltfile.py",
        "Tiltfile",
        "kind-config.yaml",
        "README.md",
        ".git/HEAD",
        ".venv/bin/python",
        "app/todos/__pycache__/views.cpython-312.pyc",
        "app/staticfiles/css/app.css",
        "app/.dev/db.sqlite3",
        "app/.pytest_cache/v/cache/nodeids",
        "app/.env",
    ],
)
def test_edits_outside_the_app_and_local_state_neither_rebuild_nor_sync(build, path):
    assert any(f.excludes(path) for f in _filters(build))


def test_app_processes_reload_themselves_and_accept_synced_files(local_overlay, dockerfile_stages):
    dev_stage = next(stage for stage in dockerfile_stages if stage.name == "dev")
    [app_copy] = [
        i for i in dev_stage.instructions if i.keyword == "COPY" and "from" not in i.flags
    ]
    code_owner = int(app_copy.flags["chown"].split(":")[0])
    for name in APP_PROCESSES:
        deployment = find(local_overlay, "Deployment", name)
        pod = deployment["spec"]["template"]["spec"]
        [container] = [c for c in pod["containers"] if c["name"] == name]
        command = container.get("command", []) + container.get("args", [])
        # No process-restart step in live_update: the process restarts itself.
        assert "--reload" in command, f"{name} does not run its --reload command"
        security = container.get("securityContext", {})
        assert security.get("readOnlyRootFilesystem") is not True, f"{name}: Tilt cannot write /app"
        uid = security.get("runAsUser", pod.get("securityContext", {}).get("runAsUser"))
        assert uid == code_owner, f"{name} runs as {uid}, but /app belongs to {code_owner}"


# --- Resources and their order ---------------------------------------------------------------


def test_every_workload_of_the_overlay_is_a_configured_resource(tilt_run, local_overlay):
    workloads = {o["metadata"]["name"] for o in local_overlay if o["kind"] in WORKLOAD_KINDS}
    configured = {
        resource.workload["metadata"]["name"]
        for resource in tilt_run.resources.values()
        if resource.workload and resource.configured
    }
    assert workloads == configured == {*APP_PROCESSES, "migrate", *DATA_SERVICES}
    assert "uncategorized" not in tilt_run.resources, "every object belongs to a named resource"


def test_start_order_is_postgres_then_migrate_then_the_processes(tilt_run):
    graph = tilt_run.graph()
    list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert "postgres" in ancestors(graph, "migrate")
    for name in APP_PROCESSES:
        assert {"migrate", "postgres", "redis", "setup"} <= ancestors(graph, name)
    for name in ("migrate", *DATA_SERVICES):
        assert "setup" in ancestors(graph, name)


def test_setup_holds_the_namespace_and_config_the_workloads_need(tilt_run):
    setup = {(o["kind"], o["metadata"]["name"]) for o in tilt_run.resources["setup"].objects}
    assert ("Namespace", "todo") in setup and ("ServiceAccount", "todo") in setup
    assert {"ConfigMap", "Secret", "NetworkPolicy"} <= {kind for kind, _ in setup}
    assert not {kind for kind, _ in setup} & (WORKLOAD_KINDS | {"Service", "Ingress"})


def test_migrate_runs_on_start_then_on_demand(tilt_run):
    migrate = tilt_run.resources["migrate"]
    assert migrate.workload["kind"] == "Job"
    # A finished Job cannot be live-updated: automatic, every edit would rebuild and rerun it.
    assert migrate.trigger_mode == TRIGGER_MODE_MANUAL and migrate.auto_init


def test_resources_are_grouped_by_label(tilt_run):
    labels = {name: resource.labels for name, resource in tilt_run.resources.items()}
    assert all(labels.values()), labels
    assert all(labels[name] == ["app"] for name in (*APP_PROCESSES, "migrate"))
    assert all(labels[name] == ["data"] for name in DATA_SERVICES)
    assert all(labels[name] == ["tools"] for name in BUTTONS)


# --- Reaching the app ------------------------------------------------------------------------


def test_web_port_forward_targets_the_container_port_behind_the_web_service(
    tilt_run, local_overlay
):
    service = find(local_overlay, "Service", "web")
    [service_port] = service["spec"]["ports"]
    assert service_port["port"] == 80
    [container] = [
        c for c in containers(find(local_overlay, "Deployment", "web")) if c["name"] == "web"
    ]
    target = service_port["targetPort"]
    container_port = next(
        p["containerPort"]
        for p in container["ports"]
        if target in (p.get("name"), p["containerPort"])
    )
    forward = tilt_run.resources["web"].port_forwards[0]  # then the metrics port
    assert (forward.local_port, forward.container_port) == (8000, container_port) == (8000, 8000)


def test_the_web_port_forward_port_is_a_flag():
    run = run_tiltfile(REPO_ROOT, args=["--web-port", "8001"])
    assert run.resources["web"].port_forwards[0].local_port == 8001


def test_links_open_the_app_through_the_ingress_kind_publishes(
    tilt_run, local_overlay, kind_config
):
    ingress = find(local_overlay, "Ingress", "web")
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "web"
    # Contour, which `invoke up` installs, serves Ingresses without a class or of class contour.
    assert ingress["spec"].get("ingressClassName") in (None, "contour")
    [host_port] = [
        m["hostPort"] for n in kind_config["nodes"] for m in n.get("extraPortMappings", [])
        if m["containerPort"] == 80
    ]  # fmt: skip
    urls = [link.url for link in tilt_run.resources["web"].links]
    assert urls == [
        f"http://{rule['host']}:{host_port}/",
        f"http://{rule['host']}:{host_port}/admin/",
    ]
    assert ("Ingress", "web") in {
        (o["kind"], o["metadata"]["name"]) for o in tilt_run.resources["web"].objects
    }


def test_django_accepts_the_hosts_the_links_and_port_forward_use(local_overlay):
    from django.http.request import validate_host

    configmap = next(
        o
        for o in local_overlay
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("todo-config")
    )
    allowed = configmap["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    host = find(local_overlay, "Ingress", "web")["spec"]["rules"][0]["host"]
    assert validate_host(host, allowed), f"{host} (the ingress link) is not in {allowed}"
    assert validate_host("localhost", allowed), f"localhost (the port-forward) is not in {allowed}"


# --- Buttons ----------------------------------------------------------------------------------


def test_buttons_are_manual_local_commands(tilt_run):
    for name in ("tests", "lint", "superuser"):
        button = tilt_run.resources[name]
        assert button.kind == "local"
        assert button.trigger_mode == TRIGGER_MODE_MANUAL and not button.auto_init


def test_test_and_lint_buttons_run_the_invoke_tasks(tilt_run):
    for button, task_name in (("tests", "test"), ("lint", "lint")):
        assert tilt_run.resources[button].cmd == f"uv run invoke {task_name}"
        assert task_name in tasks.ns.tasks


def test_superuser_button_runs_in_the_web_container_of_the_cluster(tilt_run, local_overlay):
    cmd = tilt_run.resources["superuser"].cmd
    assert cmd[:9] == [
        "kubectl", "--context", "kind-todo", "--namespace", "todo",
        "exec", "deployment/web", "--container", "web",
    ]  # fmt: skip
    assert cmd[9:14] == ["--", "python", "/app/manage.py", "shell", "--command"]
    web = find(local_overlay, "Deployment", "web")
    assert web["metadata"]["namespace"] == "todo"
    assert "web" in {c["name"] for c in web["spec"]["template"]["spec"]["containers"]}
    compile(cmd[14], "superuser button", "exec")


@pytest.mark.django_db
def test_superuser_button_creates_admin_or_resets_its_password(tilt_run, django_user_model, capsys):
    script = tilt_run.resources["superuser"].cmd[-1]
    exec(script, {})  # noqa: S102 (the button's own script, what `manage.py shell` runs)
    admin = django_user_model.objects.get(username="admin")
    admin.set_password("changed")
    admin.save()

    exec(script, {})  # noqa: S102 (clicked again)

    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password("admin")
    assert django_user_model.objects.filter(username="admin").count() == 1
    admin_link = tilt_run.resources["web"].links[1].url
    assert f"superuser admin / admin: {admin_link}" in capsys.readouterr().out


# --- Options, and `tilt ci` ---------------------------------------------------------------------


def enabled(args: list[str]) -> set[str]:
    return run_tiltfile(REPO_ROOT, args=args).running()


def test_by_default_everything_runs(tilt_run):
    assert tilt_run.enabled is None


def test_only_web_runs_web_and_what_it_needs():
    assert enabled(["--only-web"]) == {
        "setup",
        *DATA_SERVICES,
        "migrate",
        "web",
        "tests",
        "lint",
        "superuser",
        "readyz",
    }


def test_resources_named_on_the_command_line_run_with_their_dependencies():
    assert enabled(["worker"]) == {"setup", *DATA_SERVICES, "migrate", "worker", "tests", "lint"}


@pytest.mark.parametrize("args", [["--only-web"], ["worker", "beat"], ["migrate"], ["redis"]])
def test_enabled_resources_include_everything_they_depend_on(args):
    run = run_tiltfile(REPO_ROOT, args=args)
    for name in run.running():
        assert set(run.resources[name].resource_deps) <= run.running(), name


@pytest.mark.parametrize(
    ("args", "error"),
    [(["wbe"], 'unknown resource "wbe"'), (["--only-webb"], "unknown flag --only-webb")],
)
def test_a_typo_in_the_options_fails(args, error):
    with pytest.raises(TiltfileError, match=error):
        run_tiltfile(REPO_ROOT, args=args)


def test_tilt_ci_deploys_everything_checks_readyz_and_skips_the_buttons(local_overlay, kind_config):
    run = run_tiltfile(REPO_ROOT, subcommand="ci")
    started = {name for name, resource in run.resources.items() if resource.auto_init}
    k8s = {name for name, resource in run.resources.items() if resource.kind == "k8s"}
    assert started == k8s | {"readyz"}
    assert run.ci_settings["timeout"] and run.ci_settings["readiness_timeout"]

    readyz = run.resources["readyz"]
    assert readyz.resource_deps == ["web"]
    host = find(local_overlay, "Ingress", "web")["spec"]["rules"][0]["host"]
    [port] = cluster.host_ports(kind_config)
    [container] = [
        c for c in containers(find(local_overlay, "Deployment", "web")) if c["name"] == "web"
    ]
    readiness_path = container["readinessProbe"]["httpGet"]["path"]
    assert readyz.cmd[-3:] == [
        "--header",
        f"Host: {host}",
        f"http://127.0.0.1:{port}{readiness_path}",
    ]
    assert "--fail" in readyz.cmd and "--retry" in readyz.cmd


def test_readyz_is_a_button_outside_ci(tilt_run):
    assert not tilt_run.resources["readyz"].auto_init


def test_requires_the_tilt_version_invoke_up_checks_for(tilt_run):
    assert tilt_run.version_constraint == ">=" + ".".join(map(str, cluster.MINIMUM_TILT))


def test_registry_comes_from_the_cluster_configmap_not_the_tiltfile():
    # Tilt reads kube-public/local-registry-hosting (written by `invoke up`); a
    # default_registry() here would override it for every cluster.
    assert "default_registry(" not in (REPO_ROOT / "Tiltfile").read_text()


# --- The stand-ins catch what Tilt would reject -------------------------------------------------


TILTFILE = (REPO_ROOT / "Tiltfile").read_text()


@pytest.mark.parametrize(
    ("original", "broken", "error"),
    [
        ("k8s_resource(\n", "k8s_resorce(\n", "k8s_resorce. not found"),
        ("fall_back_on([", "fallback_on([", "fallback_on. not found"),
        (
            'resource_deps = DEPENDS_ON["migrate"]',
            'resource_dep = DEPENDS_ON["migrate"]',
            "unexpected keyword",
        ),
        ('"redis": ["setup"],', '"redis": ["setpu"],', "unknown resource 'setpu'"),
        ('sync("app", "/app")', 'sync("ap", "/app")', "ap does not exist"),
        ('labels = ["data"]', 'labels = ["-data"]', "invalid label"),
    ],
)
def test_a_broken_tiltfile_fails(original, broken, error):
    assert original in TILTFILE
    with pytest.raises(TiltfileError, match=error):
        run_tiltfile(REPO_ROOT, source=TILTFILE.replace(original, broken, 1))


@pytest.mark.parametrize(
    ("missing", "error"),
    [
        ("kind-config.yaml", "read_yaml: kind-config.yaml does not exist"),
        ("kustomize", "kustomize: kustomize/overlays/local does not exist"),
        ("Dockerfile", "docker_build dockerfile: Dockerfile does not exist"),
        ("uv.lock", "fall_back_on paths: uv.lock does not exist"),
        ("app", "sync step source: app does not exist"),
    ],
)
def test_a_missing_file_fails(tmp_path: Path, missing, error):
    for name in ("Tiltfile", "kind-config.yaml", "Dockerfile", "pyproject.toml", "uv.lock"):
        if name != missing:
            shutil.copy(REPO_ROOT / name, tmp_path / name)
    for name in ("kustomize", "app"):
        if name != missing:
            shutil.copytree(
                REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
            )
    with pytest.raises(TiltfileError, match=error):
        run_tiltfile(tmp_path)
