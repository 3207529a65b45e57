"""Database connections at the peak of each cloud overlay fit what Terraform gives it.

The peak: every process that holds a PostgreSQL connection, at its autoscaler's maximum plus
the rollout surge (old and new pods run together), with Django's persistent connections
(DATABASE_CONN_MAX_AGE) held per gunicorn thread and per Celery prefork child; plus beat and
the migrate hook, which runs while the previous release still serves. DigitalOcean's PgBouncer
pool runs in session mode, so each of those needs a server connection of the pool, and the
pool must fit the plan's limit (25 connections per GB of RAM, 3 reserved: DigitalOcean's
connection-pool documentation). On AWS they go straight to RDS, whose default max_connections
is DBInstanceClassMemory / 9531392 (RDS' parameter group default).
"""

from __future__ import annotations

import math
import re

import pytest

from ops import tf
from tests.terraform.conftest import named

from .test_contract import module_call, one

# GiB of RAM of the RDS classes the infra stack picks (AWS' instance class table).
RDS_MEMORY_GIB = {"db.t4g.small": 2, "db.m7g.large": 8}
DO_RESERVED = 3


def per_environment(expression: str) -> dict[str, str]:
    """`local.production ? PROD : STAGE` (optionally inside coalesce(var.x, ...)) by env."""
    match = re.search(r"local\.production \? \"?([\w.-]+)\"? : \"?([\w.-]+)\"?", expression)
    assert match, f"not a per-environment value: {expression}"
    return {"prod": match[1], "stage": match[2]}


def env_value(container: dict, config: dict, name: str, default: str) -> int:
    values = {e["name"]: e.get("value") for e in container.get("env", [])}
    return int(values.get(name) or config.get(name) or default)


def surge(deployment: dict, replicas: int) -> int:
    strategy = deployment["spec"].get("strategy", {})
    if strategy.get("type") == "Recreate":
        return 0
    value = str(strategy.get("rollingUpdate", {}).get("maxSurge", "25%"))
    return math.ceil(replicas * int(value[:-1]) / 100) if value.endswith("%") else int(value)


def peak_connections(objects: list[dict]) -> dict[str, int]:
    """Connections each process can hold at once, at its maximum scale during a rollout."""
    config = next(
        o["data"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("todo-config")
    )
    maxima = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"].get(
            "maxReplicas", o["spec"].get("maxReplicaCount")
        )
        for o in objects
        if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
    }
    peak = {}
    for name, per_pod in (
        (
            "web",
            lambda c: (
                env_value(c, config, "WEB_CONCURRENCY", "1")
                * env_value(c, config, "GUNICORN_THREADS", "1")
            ),
        ),
        ("worker", lambda c: env_value(c, config, "CELERY_WORKER_CONCURRENCY", "1")),
        ("beat", lambda c: 1),
    ):
        deployment = one(objects, "Deployment", name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        replicas = maxima.get(name, deployment["spec"].get("replicas", 1))
        peak[name] = (replicas + surge(deployment, replicas)) * per_pod(container)
    peak["migrate"] = len([o for o in objects if o["kind"] == "Job"])
    return peak


@pytest.mark.parametrize("env", tf.ENVIRONMENTS)
def test_do_pool_holds_the_peak_and_fits_the_database_plan(do_overlays, env):
    peak = peak_connections(do_overlays[env])
    postgres = module_call("do/stacks/infra", "postgres")
    pool = int(per_environment(postgres["pool_size"])[env])
    mode = (
        postgres.get("pool_mode")
        or named("do/modules/postgres", "variable")["pool_mode"]["default"]
    )
    assert mode == "session", "the peak below counts one server connection per client"
    assert sum(peak.values()) <= pool, f"do/{env}: pool {pool} < peak {peak}"
    size = per_environment(postgres["size"])[env]
    memory_gib = int(re.fullmatch(r"db-s-\d+vcpu-(\d+)gb", size)[1])
    limit = 25 * memory_gib - DO_RESERVED
    assert pool <= limit, f"do/{env}: pool {pool} > the {size} plan's {limit} connections"


@pytest.mark.parametrize("env", tf.ENVIRONMENTS)
def test_aws_database_holds_the_peak(aws_overlays, env):
    peak = peak_connections(aws_overlays[env])
    classes = named("aws/stacks/infra", "locals")["db_instance_class"]
    instance_class = per_environment(classes)[env]
    max_connections = RDS_MEMORY_GIB[instance_class] * 1024**3 // 9531392
    assert sum(peak.values()) <= max_connections, f"aws/{env}: {instance_class} < {peak}"


def test_the_peak_counts_autoscaler_maximum_surge_threads_and_hooks(do_overlays):
    """do/prod by hand: web 10 + 3 surge (25%) x 2 workers, worker (8 + 1) x 2, beat, migrate."""
    assert peak_connections(do_overlays["prod"]) == {
        "web": 26,
        "worker": 18,
        "beat": 1,
        "migrate": 1,
    }
