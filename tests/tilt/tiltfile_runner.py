"""Execute the Tiltfile without Tilt: Starlark (starlark-pyo3) with recording stand-ins.

Each stand-in has the signature of the Tilt builtin it replaces (Tilt's API reference,
v0.37), so a misspelled builtin or keyword fails to resolve, and it checks what Tilt
checks when the Tiltfile loads: files and directories exist, live_update steps are in
order and inside the build context, resource names, dependencies, labels and object
selectors resolve. What it records is assembled into Tilt's resources the way Tilt
does it: one resource per workload, Services attached to the workload they select,
objects claimed by `k8s_resource(objects=...)`, the rest in `uncategorized`.

`kustomize()` runs the real renderer (ops.k8s), so the Tiltfile sees the real overlay.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlark as sl
import yaml

from ops import k8s

TRIGGER_MODE_AUTO = 1
TRIGGER_MODE_MANUAL = 2
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}
LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


class TiltfileError(Exception):
    """What Tilt would report when loading the Tiltfile."""


@dataclass(frozen=True)
class PortForward:
    local_port: int
    container_port: int | None = None
    name: str | None = None
    link_path: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class Link:
    url: str
    name: str | None = None


@dataclass(frozen=True)
class LiveUpdateStep:
    step: str  # fall_back_on | sync | run | initial_sync | restart_container
    paths: tuple[str, ...] = ()  # fall_back_on: files; sync: (local, remote)
    command: Any = None
    triggers: tuple[str, ...] = ()


@dataclass
class DockerBuild:
    ref: str
    context: str
    dockerfile: str
    target: str
    only: list[str]
    ignore: list[str]
    live_update: list[LiveUpdateStep]
    build_args: dict[str, str]

    def steps(self, kind: str) -> list[LiveUpdateStep]:
        return [step for step in self.live_update if step.step == kind]


@dataclass
class Resource:
    """One Tilt resource as the UI shows it: a workload or a local command."""

    name: str
    kind: str  # k8s | local
    objects: list[dict] = field(default_factory=list)
    resource_deps: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    trigger_mode: int = TRIGGER_MODE_AUTO
    auto_init: bool = True
    port_forwards: list[PortForward] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    cmd: Any = None
    configured: bool = False  # named in a k8s_resource() / local_resource() call

    @property
    def workload(self) -> dict | None:
        return next((obj for obj in self.objects if obj["kind"] in WORKLOAD_KINDS), None)


@dataclass
class TiltRun:
    """Everything one execution of the Tiltfile told Tilt."""

    root: Path
    context: str
    subcommand: str
    version_constraint: str = ""
    allowed_contexts: list[str] = field(default_factory=list)
    kustomize_dirs: list[str] = field(default_factory=list)
    yaml_streams: list[str] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)
    builds: list[DockerBuild] = field(default_factory=list)
    resources: dict[str, Resource] = field(default_factory=dict)
    enabled: list[str] | None = None  # None: Tilt's default, every resource
    ci_settings: dict[str, str] = field(default_factory=dict)
    config_definitions: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def graph(self) -> dict[str, list[str]]:
        return {name: list(res.resource_deps) for name, res in self.resources.items()}

    def running(self) -> set[str]:
        return set(self.resources) if self.enabled is None else set(self.enabled)


def _strings(value: Any) -> list[str]:
    """Tilt's `str or List[str]` parameters."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _matches(selector: str, obj: dict) -> bool:
    """Tilt's object selector NAME[:KIND[:NAMESPACE]]: full, case-insensitive match per part."""
    parts = selector.split(":")
    actual = [obj["metadata"]["name"], obj["kind"], obj["metadata"].get("namespace", "")]
    return all(want.lower() == have.lower() for want, have in zip(parts, actual, strict=False))


class _Recorder:
    def __init__(self, root: Path, context: str, subcommand: str, args: list[str]):
        self.run = TiltRun(root=root, context=context, subcommand=subcommand)
        self.args = args
        self.k8s_calls: list[dict] = []
        self.local_calls: list[dict] = []
        self.parsed = False

    # --- files -------------------------------------------------------------------------
    def path(self, relative: str, what: str) -> Path:
        path = self.run.root / relative
        if not path.exists():
            raise TiltfileError(f"{what}: {relative} does not exist")
        return path

    def inside_context(self, build: DockerBuild, relative: str, what: str) -> None:
        self.path(relative, what)
        context = (self.run.root / build.context).resolve()
        if not (self.run.root / relative).resolve().is_relative_to(context):
            raise TiltfileError(f"{what} {relative!r} is not a child of any watched filepaths")

    # --- builtins ------------------------------------------------------------------------
    def version_settings(self, check_updates=True, constraint=""):
        self.run.version_constraint = constraint

    def allow_k8s_contexts(self, contexts):
        self.run.allowed_contexts += _strings(contexts)

    def k8s_context(self):
        return self.run.context

    def read_yaml(self, path, default=None):
        if not (self.run.root / path).exists() and default is not None:
            return default
        return yaml.safe_load(self.path(path, "read_yaml").read_text())

    def kustomize(self, pathToDir, kustomize_bin=None, flags=()):  # Tilt's parameter names
        directory = self.path(pathToDir, "kustomize")
        if not (directory / "kustomization.yaml").is_file():
            raise TiltfileError(f"kustomize: no kustomization.yaml in {pathToDir}")
        self.run.kustomize_dirs.append(pathToDir)
        result = subprocess.run(
            [*k8s.renderer(), str(directory), *flags], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise TiltfileError(f"kustomize {pathToDir} failed: {result.stderr}")
        return result.stdout

    def decode_yaml_stream(self, yaml_text):
        return [doc for doc in yaml.safe_load_all(yaml_text) if doc]

    def k8s_yaml(self, yaml_text, allow_duplicates=False):
        docs = self.decode_yaml_stream(yaml_text)
        seen = {
            (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in self.run.objects
        }
        duplicates = [
            d
            for d in docs
            if (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) in seen
        ]
        if duplicates and not allow_duplicates:
            raise TiltfileError(f"k8s_yaml: duplicate objects {duplicates}")
        self.run.yaml_streams.append(yaml_text)
        self.run.objects += docs

    def docker_build(
        self, ref, context, build_args={}, dockerfile="Dockerfile", dockerfile_contents="",  # noqa: B006 (Tilt's defaults)
        live_update=[], match_in_env_vars=False, ignore=[], only=[], entrypoint=[], target="",  # noqa: B006
        ssh="", network="", secret="", extra_tag="", container_args=None, cache_from=[],  # noqa: B006
        pull=False, platform="", extra_hosts=[],  # noqa: B006
    ):  # fmt: skip
        self.path(context, "docker_build context")
        self.path(dockerfile, "docker_build dockerfile")
        for path in _strings(only):
            if "*" in path:
                raise TiltfileError(f"'only' does not support '*' file globs: {path}")
        build = DockerBuild(
            ref=ref, context=context, dockerfile=dockerfile, target=target,
            only=_strings(only), ignore=_strings(ignore), live_update=list(live_update),
            build_args=dict(build_args),
        )  # fmt: skip
        self._check_live_update(build)
        self.run.builds.append(build)

    def _check_live_update(self, build: DockerBuild) -> None:
        order = ["initial_sync", "fall_back_on", "sync", "run", "restart_container"]
        positions = [order.index(step.step) for step in build.live_update]
        if positions != sorted(positions):
            raise TiltfileError("live_update steps must be: initial_sync, fall_back_on, sync, run")
        for step in build.steps("fall_back_on"):
            for path in step.paths:
                self.inside_context(build, path, "fall_back_on paths")
        for step in build.steps("sync"):
            local, remote = step.paths
            self.inside_context(build, local, "sync step source")
            if not remote.startswith("/"):
                raise TiltfileError(f"sync: remote path {remote!r} must be absolute")

    def fall_back_on(self, files):
        return sl.OpaquePythonObject(LiveUpdateStep("fall_back_on", tuple(_strings(files))))

    def sync(self, local_path, remote_path):
        return sl.OpaquePythonObject(LiveUpdateStep("sync", (local_path, remote_path)))

    def run_step(self, cmd, trigger=[], echo_off=False):  # noqa: B006 (Tilt's default)
        return sl.OpaquePythonObject(
            LiveUpdateStep("run", command=cmd, triggers=tuple(_strings(trigger)))
        )

    def initial_sync(self):
        return sl.OpaquePythonObject(LiveUpdateStep("initial_sync"))

    def restart_container(self):
        return sl.OpaquePythonObject(LiveUpdateStep("restart_container"))

    def port_forward(self, local_port, container_port=None, name=None, link_path=None, host=None):
        return sl.OpaquePythonObject(PortForward(local_port, container_port, name, link_path, host))

    def link(self, url, name=None):
        return sl.OpaquePythonObject(Link(url, name))

    def k8s_resource(
        self, workload="", new_name="", port_forwards=[], extra_pod_selectors=[],  # noqa: B006
        trigger_mode=TRIGGER_MODE_AUTO, resource_deps=[], objects=[], auto_init=True,  # noqa: B006
        pod_readiness="", links=[], labels=[], discovery_strategy="",  # noqa: B006
    ):  # fmt: skip
        if not workload and not (new_name and objects):
            raise TiltfileError("k8s_resource: give `workload`, or `new_name` with `objects`")
        forwards = [_port_forward(pf) for pf in _list(port_forwards)]
        self.k8s_calls.append(dict(
            workload=workload, new_name=new_name, port_forwards=forwards,
            trigger_mode=trigger_mode, resource_deps=list(resource_deps), objects=list(objects),
            auto_init=auto_init, links=[Link(x) if isinstance(x, str) else x for x in _list(links)],
            labels=_strings(labels),
        ))  # fmt: skip

    def local_resource(
        self, name, cmd, deps=None, trigger_mode=TRIGGER_MODE_AUTO, resource_deps=[], ignore=[],  # noqa: B006
        auto_init=True, serve_cmd="", cmd_bat="", serve_cmd_bat="", allow_parallel=False,
        links=[], labels=[], env={}, serve_env={}, readiness_probe=None, dir="", serve_dir="",  # noqa: B006
    ):  # fmt: skip
        for dep in _strings(deps):
            self.path(dep, f"local_resource {name} deps")
        self.local_calls.append(dict(
            name=name, cmd=cmd, trigger_mode=trigger_mode, resource_deps=list(resource_deps),
            auto_init=auto_init, labels=_strings(labels),
            links=[Link(x) if isinstance(x, str) else x for x in _list(links)],
        ))  # fmt: skip

    def ci_settings(self, k8s_grace_period="", timeout="30m", readiness_timeout="5m"):
        self.run.ci_settings = {
            "k8s_grace_period": k8s_grace_period,
            "timeout": timeout,
            "readiness_timeout": readiness_timeout,
        }

    def warn(self, msg):
        print(f"Tiltfile warning: {msg}")

    # --- the `config` namespace ---------------------------------------------------------
    def define(self, kind: str, name: str, args: bool = False, usage: str = "") -> None:
        if self.parsed:
            raise TiltfileError("config.define_* must come before config.parse()")
        self.run.config_definitions[name] = (kind, args)

    def config_parse(self):
        """Tilt's parsing of `tilt up -- ARGS` against the config.define_* settings."""
        self.parsed = True
        definitions = self.run.config_definitions
        positional = next((n for n, (_, is_args) in definitions.items() if is_args), None)
        values: dict[str, Any] = {}
        args = list(self.args)
        while args:
            arg = args.pop(0)
            if not arg.startswith("--"):
                if positional is None:
                    raise TiltfileError(f"config: positional args given but none defined: {arg}")
                values.setdefault(positional, []).append(arg)
                continue
            name, _, inline = arg[2:].partition("=")
            if name not in definitions:
                raise TiltfileError(f"config: unknown flag --{name}")
            kind = definitions[name][0]
            if kind == "bool":
                values[name] = inline.lower() != "false" if inline else True
            else:
                value = inline or args.pop(0)
                values[name] = [*values.get(name, []), value] if kind == "string_list" else value
        return values

    def set_enabled_resources(self, resources):
        self.run.enabled = list(resources)

    def clear_enabled_resources(self):
        self.run.enabled = []

    # --- after the Tiltfile ran: assemble the resources like Tilt ------------------------
    def assemble(self) -> TiltRun:
        run = self.run
        workloads = [o for o in run.objects if o["kind"] in WORKLOAD_KINDS]
        for obj in workloads:
            name = obj["metadata"]["name"]
            if name in run.resources:
                raise TiltfileError(f"two workloads named {name}")
            run.resources[name] = Resource(name=name, kind="k8s", objects=[obj])
        claimed = {id(o) for o in workloads}

        for call in self.k8s_calls:
            chosen = [self._select(selector, claimed) for selector in call["objects"]]
            claimed |= {id(o) for o in chosen}
            if call["workload"]:
                if call["workload"] not in run.resources:
                    raise TiltfileError(f"k8s_resource: no workload named {call['workload']!r}")
                resource = run.resources.pop(call["workload"])
                resource.objects += chosen
                resource.name = call["new_name"] or resource.name
            else:
                resource = Resource(name=call["new_name"], kind="k8s", objects=chosen)
            if resource.name in run.resources:
                raise TiltfileError(f"k8s_resource: resource {resource.name!r} defined twice")
            resource.configured = True
            for key in (
                "resource_deps",
                "labels",
                "trigger_mode",
                "auto_init",
                "port_forwards",
                "links",
            ):
                setattr(resource, key, call[key])
            run.resources[resource.name] = resource

        for service in (o for o in run.objects if o["kind"] == "Service" and id(o) not in claimed):
            for resource in run.resources.values():
                template = (resource.workload or {}).get("spec", {}).get("template", {})
                pod_labels = template.get("metadata", {}).get("labels", {})
                selector = service["spec"].get("selector") or {}
                if selector and selector.items() <= pod_labels.items():
                    resource.objects.append(service)
                    claimed.add(id(service))
                    break
        leftovers = [o for o in run.objects if id(o) not in claimed]
        if leftovers:
            run.resources["uncategorized"] = Resource(
                name="uncategorized", kind="k8s", objects=leftovers
            )

        for call in self.local_calls:
            if call["name"] in run.resources:
                raise TiltfileError(f"local_resource: resource {call['name']!r} defined twice")
            run.resources[call["name"]] = Resource(kind="local", configured=True, **call)

        for resource in run.resources.values():
            for dep in resource.resource_deps:
                if dep not in run.resources:
                    raise TiltfileError(
                        f"resource {resource.name} depends on unknown resource {dep!r}"
                    )
            for label in resource.labels:
                if not LABEL.match(label):
                    raise TiltfileError(f"resource {resource.name}: invalid label {label!r}")
            if resource.trigger_mode not in (TRIGGER_MODE_AUTO, TRIGGER_MODE_MANUAL):
                raise TiltfileError(f"resource {resource.name}: unknown trigger mode")
        for name in run.enabled or []:
            if name not in run.resources:
                raise TiltfileError(f"set_enabled_resources: no resource named {name!r}")
        return run

    def _select(self, selector: str, claimed: set[int]) -> dict:
        found = [o for o in self.run.objects if _matches(selector, o)]
        if len(found) != 1:
            raise TiltfileError(f"object selector {selector!r} matches {len(found)} objects, not 1")
        if id(found[0]) in claimed:
            raise TiltfileError(
                f"object selector {selector!r} matches an object already in a resource"
            )
        return found[0]


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _port_forward(value: Any) -> PortForward:
    """A port_forwards entry: 9000, '9000:8000', 'host:9000:8000' or a port_forward()."""
    if isinstance(value, PortForward):
        return value
    parts = str(value).split(":")
    host = parts[0] if len(parts) == 3 else None
    ports = [int(part) for part in parts[-2:]] if len(parts) > 1 else [int(parts[0])]
    return PortForward(ports[0], ports[1] if len(ports) == 2 else None, host=host)


# Tilt's namespaces and constants, built from the stand-ins above.
_PRELUDE = f"""
config = struct(
    define_string_list = _config_define_string_list,
    define_string = _config_define_string,
    define_bool = _config_define_bool,
    parse = _config_parse,
    set_enabled_resources = _config_set_enabled_resources,
    clear_enabled_resources = _config_clear_enabled_resources,
    tilt_subcommand = _tilt_subcommand,
    main_dir = _main_dir,
    main_path = _main_path,
)
TRIGGER_MODE_AUTO = {TRIGGER_MODE_AUTO}
TRIGGER_MODE_MANUAL = {TRIGGER_MODE_MANUAL}
"""


def run_tiltfile(
    root: Path,
    *,
    source: str | None = None,
    context: str = "kind-todo",
    subcommand: str = "up",
    args: list[str] = (),
) -> TiltRun:
    """Execute ROOT/Tiltfile (or `source` in its place) as `tilt SUBCOMMAND -- ARGS` would."""
    recorder = _Recorder(root, context, subcommand, list(args))
    module = sl.Module()
    builtins = {
        name: getattr(recorder, name)
        for name in (
            "version_settings", "allow_k8s_contexts", "k8s_context", "read_yaml", "kustomize",
            "decode_yaml_stream", "k8s_yaml", "docker_build", "fall_back_on", "sync",
            "initial_sync", "restart_container", "port_forward", "link", "k8s_resource",
            "local_resource", "ci_settings", "warn",
        )
    }  # fmt: skip
    builtins["run"] = recorder.run_step
    for name, definition in {
        "_config_define_string_list": "string_list",
        "_config_define_string": "string",
        "_config_define_bool": "bool",
    }.items():
        builtins[name] = lambda name, args=False, usage="", _kind=definition: recorder.define(
            _kind, name, args, usage
        )
    builtins["_config_parse"] = recorder.config_parse
    builtins["_config_set_enabled_resources"] = recorder.set_enabled_resources
    builtins["_config_clear_enabled_resources"] = recorder.clear_enabled_resources
    for name, function in builtins.items():
        module.add_callable(name, function)
    module["_tilt_subcommand"] = subcommand
    module["_main_path"] = str(root / "Tiltfile")
    module["_main_dir"] = str(root)

    dialect = sl.Dialect.extended()
    globals_ = sl.Globals.extended_by(
        [sl.LibraryExtension.StructType, sl.LibraryExtension.Print, sl.LibraryExtension.Json]
    )
    sl.eval(module, sl.parse("tilt-prelude", _PRELUDE, dialect), globals_)
    text = source if source is not None else (root / "Tiltfile").read_text()
    try:
        sl.eval(module, sl.parse("Tiltfile", text, dialect), globals_)
    except sl.StarlarkError as error:  # fail(), a stand-in's TiltfileError, a name error
        raise TiltfileError(str(error)) from error
    return recorder.assemble()
