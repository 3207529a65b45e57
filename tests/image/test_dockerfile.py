"""The Dockerfile keeps the names of docs/contract.md: targets, paths, user, settings."""

from __future__ import annotations

import os
import re
import runpy

import pytest

from ops import image
from ops.tools import APP_DIR, REPO_ROOT
from tests.dockerfile import context_inputs, copies, stage_chain, workdir
from tests.image.conftest import APP_UID, DEPENDENCY_STEP, environment, instructions

CONTRACT = (REPO_ROOT / "docs" / "contract.md").read_text()
APP_USER = f"{APP_UID}:{APP_UID}"
PROCESSES = ("web", "worker", "beat", "migrate")


def test_contract_names_the_values_checked_here():
    """If the contract changes, these tests (and the Dockerfile) must change with it."""
    assert f"user and group `{APP_USER}`" in CONTRACT
    assert "code at `/app`" in CONTRACT
    assert "virtualenv `/opt/venv`" in CONTRACT
    assert "`DJANGO_SETTINGS_MODULE=config.settings.production`" in CONTRACT
    assert "`/app/staticfiles`" in CONTRACT
    assert "`runtime` (default, last stage) and `dev`" in CONTRACT


def test_runtime_is_the_last_stage_and_dev_exists(stages):
    names = list(stages)
    assert names[-1] == "runtime", "`docker build .` must give the production image"
    assert "dev" in names


def test_base_images_are_pinned(stages):
    external = {stage.base for stage in stages.values() if stage.base not in stages}
    assert external == {"python:3.12-slim-bookworm", "ghcr.io/astral-sh/uv:0.13.9"}
    for reference in external:
        assert not reference.endswith(":latest")
    uv_tag = next(ref for ref in external if ref.startswith("ghcr.io/astral-sh/uv:"))
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", uv_tag), "pin uv to a release"


def test_runtime_and_dev_run_on_python_312_slim(stages):
    for target in ("runtime", "dev"):
        chain = stage_chain(list(stages.values()), target)
        bases = {stage.base for stage in chain if stage.base not in stages}
        assert "python:3.12-slim-bookworm" in bases


@pytest.mark.parametrize("target", ["runtime", "dev"])
def test_processes_run_as_the_fixed_non_root_user(stages, target):
    users = instructions(stages, target, "USER")
    assert users, f"{target} sets no USER"
    # Numeric, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
    assert users[-1].args == [APP_USER]
    created = " ".join(" ".join(i.args) for i in instructions(stages, target, "RUN"))
    assert f"groupadd --gid {APP_UID} app" in created
    assert f"useradd --uid {APP_UID} --gid app" in created
    # $HOME is where tools put runtime files: it must be the writable /tmp.
    assert "--home-dir /tmp" in created


@pytest.mark.parametrize("target", ["runtime", "dev"])
def test_code_is_copied_to_app_which_is_the_workdir(stages, target):
    assert workdir(list(stages.values()), target) == "/app"
    copied = [
        (sources, destination)
        for stage in stage_chain(list(stages.values()), target)
        for sources, destination in copies(stage)
    ]
    assert copied == [(["app/"], "/app/")], "the image holds the repo's app/ folder at /app"


def test_static_root_is_app_staticfiles():
    """collectstatic at build time fills /app/staticfiles, where production reads it."""
    from config.settings import base  # already imported (and configured) by the test settings

    assert APP_DIR / "staticfiles" == base.STATIC_ROOT
    assert "STATIC_ROOT" not in (APP_DIR / "config" / "settings" / "production.py").read_text()


def test_virtualenv_at_opt_venv_first_on_path(stages):
    env = environment(stages, "runtime")
    assert env["VIRTUAL_ENV"] == "/opt/venv"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert environment(stages, "builder")["UV_PROJECT_ENVIRONMENT"] == "/opt/venv"
    for target, venv_stage in (("runtime", "builder"), ("dev", "dev-venv")):
        copied = [
            (i.flags["from"], i.args)
            for i in stages[target].instructions
            if i.keyword == "COPY" and "from" in i.flags
        ]
        assert copied == [(venv_stage, ["/opt/venv", "/opt/venv"])]


def test_python_neither_buffers_output_nor_writes_bytecode(stages):
    for target in ("runtime", "dev"):
        env = environment(stages, target)
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["PYTHONUNBUFFERED"] == "1"
    # The images get their bytecode at build time instead (dev: restarts after a sync then
    # compile only the synced files).
    assert environment(stages, "builder")["UV_COMPILE_BYTECODE"] == "1"
    for target in ("runtime", "dev"):
        runs = " ".join(" ".join(i.args) for i in stages[target].instructions if i.keyword == "RUN")
        assert "python -m compileall" in runs


def test_settings_modules_exist(stages):
    runtime = environment(stages, "runtime")["DJANGO_SETTINGS_MODULE"]
    dev = environment(stages, "dev")["DJANGO_SETTINGS_MODULE"]
    assert (runtime, dev) == ("config.settings.production", "config.settings.local")
    for module in (runtime, dev):
        assert (APP_DIR / (module.replace(".", "/") + ".py")).is_file()


def test_dependencies_install_from_the_lock_before_any_code(stages):
    """Editing app/ must not invalidate the dependency layer."""
    builder = stages["builder"]
    assert context_inputs(list(stages.values()), "builder") == {"pyproject.toml", "uv.lock"}
    syncs = [i for i in builder.instructions if i.keyword == "RUN" and "uv" in i.args[:1]]
    assert len(syncs) == 1
    assert " ".join(syncs[0].args) == DEPENDENCY_STEP
    mounts = syncs[0].flags["mount"].split(";")
    assert "type=cache,target=/root/.cache/uv" in mounts
    # The production image carries neither uv nor the dev dependencies.
    assert all(i.flags.get("from") != "uv" for i in stages["runtime"].instructions)
    assert stages["runtime"].base == "python"


def test_static_files_are_collected_at_build_time(stages):
    runtime = stages["runtime"].instructions
    code_copied = next(n for n, i in enumerate(runtime) if i.keyword == "COPY" and not i.flags)
    collect = [
        n
        for n, i in enumerate(runtime)
        if i.keyword == "RUN" and "manage.py collectstatic --noinput" in " ".join(i.args)
    ]
    assert collect and collect[0] > code_copied


def test_oci_labels_come_from_build_args_after_every_layer(stages):
    runtime = stages["runtime"].instructions
    labels = {}
    for instruction in (i for i in runtime if i.keyword == "LABEL"):
        labels |= dict(arg.split("=", 1) for arg in instruction.args)
    for name, arg in (("source", "SOURCE"), ("revision", "REVISION"), ("version", "VERSION")):
        assert labels[f"org.opencontainers.image.{name}"] == f"${{{arg}}}"
    declared = {i.args[0].split("=")[0] for i in runtime if i.keyword == "ARG"}
    # image.build passes exactly these build arguments.
    assert declared == {"SOURCE", "REVISION", "VERSION"} == set(image.build_args())
    # A new commit changes the ARG values: nothing that builds a layer may follow them.
    first_arg = next(n for n, i in enumerate(runtime) if i.keyword == "ARG")
    assert not [i.keyword for i in runtime[first_arg:] if i.keyword in ("RUN", "COPY", "ADD")]


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:acme/todo.git", "https://github.com/acme/todo"),
        ("ssh://git@github.com/acme/todo.git", "https://github.com/acme/todo"),
        ("https://token:x-oauth@github.com/acme/todo.git", "https://github.com/acme/todo"),
        ("https://gitlab.example.com/group/todo/", "https://gitlab.example.com/group/todo"),
        ("/srv/git/todo.git", ""),
    ],
)
def test_the_source_label_is_the_remote_as_a_browsable_url_without_credentials(remote, url):
    assert image.https_url(remote) == url


def test_commands_are_the_start_scripts(stages):
    assert instructions(stages, "runtime", "CMD")[-1].args == ["/app/bin/web"]
    assert instructions(stages, "dev", "CMD")[-1].args == ["/app/bin/web", "--reload"]
    for process in (*PROCESSES, "probe"):
        script = APP_DIR / "bin" / process
        assert script.is_file() and os.access(script, os.X_OK), f"{script} must be executable"


@pytest.mark.parametrize("process", PROCESSES)
def test_start_scripts_exec_their_server(process, stages):
    """No init process is added: the server itself must be PID 1 to receive SIGTERM."""
    assert not instructions(stages, "runtime", "ENTRYPOINT")
    lines = [
        line.strip()
        for line in (APP_DIR / "bin" / process).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1].startswith("exec "), f"bin/{process} must end by exec-ing its server"


def test_exposed_port_is_gunicorns_default_bind(stages, monkeypatch):
    for variable in ("GUNICORN_BIND", "PORT"):
        monkeypatch.delenv(variable, raising=False)
    config = runpy.run_path(str(APP_DIR / "config" / "gunicorn.py"))
    assert config["bind"] == "0.0.0.0:8000"
    for target in ("runtime", "dev"):
        assert instructions(stages, target, "EXPOSE")[-1].args == ["8000"]
