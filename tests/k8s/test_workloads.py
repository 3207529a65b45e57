"""The shape every overlay must keep: selectors, probes, security, scaling, policies."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ops import k8s
from ops.tools import REPO_ROOT

from .conftest import APP_WORKLOADS, find, one, pod_specs

APP_PROCESSES = ("web", "worker", "beat")
APP_UID = 10001  # docs/contract.md: the image's user and group

overlays = pytest.mark.parametrize("overlay", k8s.OVERLAYS)
cloud_overlays = pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)


def _labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _app_containers(docs):
    specs = pod_specs(docs)
    return {workload: specs[workload]["containers"][0] for workload in APP_WORKLOADS}


@overlays
def test_every_process_and_the_migrate_job_exist_with_contract_names(manifests, overlay):
    docs = manifests[overlay]
    for workload in APP_WORKLOADS:
        kind, name = workload.split("/")
        spec = one(docs, kind, name)["spec"]["template"]["spec"]
        assert [c["name"] for c in spec["containers"]] == [name]
        assert spec["serviceAccountName"] == "todo"
    one(docs, "ServiceAccount", "todo")
    namespace = "todo-pr-0" if overlay == k8s.PREVIEW_OVERLAY else "todo"
    assert {doc["metadata"]["namespace"] for doc in docs if doc["kind"] != "Namespace"} == {
        namespace
    }


@overlays
def test_labels_follow_the_contract(manifests, overlay):
    for doc in manifests[overlay]:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "todo", k8s.object_id(doc)
        assert labels.get("app.kubernetes.io/part-of") == "todo", k8s.object_id(doc)
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            component = doc["metadata"]["name"]
            assert labels["app.kubernetes.io/component"] == component
            template_labels = doc["spec"]["template"]["metadata"]["labels"]
            assert template_labels["app.kubernetes.io/component"] == component
            if "selector" in doc["spec"]:
                assert _labels_match(doc["spec"]["selector"]["matchLabels"], template_labels)


@overlays
def test_the_web_service_reaches_only_the_web_pods_on_the_http_port(manifests, overlay):
    docs = manifests[overlay]
    service = one(docs, "Service", "web")
    pods = [
        k8s.object_id(doc)
        for doc in find(docs, "Deployment") + find(docs, "StatefulSet")
        if _labels_match(service["spec"]["selector"], doc["spec"]["template"]["metadata"]["labels"])
    ]
    assert pods == ["Deployment/web"]
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 80, "http")
    web = one(docs, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in web["ports"]


@overlays
def test_one_image_for_every_process_and_the_job(manifests, overlay):
    images = {c["image"] for c in _app_containers(manifests[overlay]).values()}
    assert len(images) == 1
    (image,) = images
    if overlay == k8s.LOCAL_OVERLAY:
        assert image == "todo", "Tilt builds and substitutes the image named `todo`"
    else:
        name, _, tag = image.rpartition(":")
        assert name.endswith("/todo") and tag, f"{overlay}: registry image with a version tag"


@overlays
def test_beat_runs_exactly_once_and_never_overlaps(manifests, overlay):
    docs = manifests[overlay]
    beat = one(docs, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    targets = [
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in find(docs, "HorizontalPodAutoscaler")
    ]
    assert "beat" not in targets


@overlays
def test_probes_use_the_app_health_urls_and_liveness_commands(manifests, overlay):
    from core import liveness
    from core.middleware import LIVENESS_PATH, READINESS_PATH

    containers = _app_containers(manifests[overlay])
    web = containers["Deployment/web"]
    assert web["startupProbe"]["httpGet"] == {"path": LIVENESS_PATH, "port": "http"}
    assert web["livenessProbe"]["httpGet"] == {"path": LIVENESS_PATH, "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": READINESS_PATH, "port": "http"}
    assert set(liveness.FILE_NAMES) == {"worker", "beat"}
    for process in liveness.FILE_NAMES:
        container = containers[f"Deployment/{process}"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["exec"]["command"] == ["/app/bin/probe", process]


def probe_table() -> dict[str, list[str]]:
    """docs/operations.md's probe table: process -> its startup, liveness, readiness cells."""
    text = (REPO_ROOT / "docs" / "operations.md").read_text().split("## Probes", 1)[1]
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and not set(cells[0]) <= {"-", " "}:
            rows[cells[0].split()[0]] = cells[1:]
    return rows


@pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
def test_the_probe_table_says_what_each_probe_checks(manifests, overlay):
    """Every app container has its row, naming each probe's path or command."""
    table = probe_table()
    docs = manifests[overlay]
    for doc in find(docs, "Deployment"):
        container = doc["spec"]["template"]["spec"]["containers"][0]
        name = doc["metadata"]["name"]
        if "/app/" not in " ".join(container.get("command", [])) and name != "web":
            continue  # not one of the app's processes (the in-cluster data, if any)
        assert name in table, f"docs/operations.md's probe table has no row for {name}"
        for probe, cell in zip(
            ("startupProbe", "livenessProbe", "readinessProbe"), table[name], strict=True
        ):
            spec = container[probe]
            said = (
                spec["httpGet"]["path"] if "httpGet" in spec else " ".join(spec["exec"]["command"])
            )
            assert said.removeprefix("/app/") in cell, f"{name} {probe}: {said} not in {cell!r}"
    assert table["migrate"][0].startswith("none")


@overlays
def test_pods_run_restricted(manifests, overlay):
    """Pod Security 'restricted' plus no API token, for the app and the data services."""
    for workload, spec in pod_specs(manifests[overlay]).items():
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, workload
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        assert spec["automountServiceAccountToken"] is False, workload
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, workload
            assert security["capabilities"] == {"drop": ["ALL"]}, workload
            assert security["runAsNonRoot"] is True, workload
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), workload
            assert {"cpu", "memory"} <= resources["limits"].keys(), workload


@overlays
def test_app_pods_run_as_the_image_user_with_a_writable_tmp_only(manifests, overlay):
    for workload in APP_WORKLOADS:
        spec = pod_specs(manifests[overlay])[workload]
        assert spec["securityContext"]["runAsUser"] == APP_UID
        assert spec["securityContext"]["runAsGroup"] == APP_UID
        (container,) = spec["containers"]
        tmp = "/tmp"  # noqa: S108 - the image's only writable path (docs/contract.md)
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert list(mounts) == [tmp], f"{workload}: /tmp is the only writable path"
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts[tmp]]
        read_only = container["securityContext"]["readOnlyRootFilesystem"]
        # Development mode (local) lets Tilt sync code into web/worker/beat only.
        expected = overlay != k8s.LOCAL_OVERLAY or workload == "Job/migrate"
        assert read_only is expected, workload


@cloud_overlays
def test_cloud_scaling_has_autoscalers_and_disruption_budgets(manifests, overlay):
    docs = manifests[overlay]
    for name in ("web", "worker"):
        deployment = one(docs, "Deployment", name)
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        hpa = one(docs, "HorizontalPodAutoscaler", name)["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
        pdb = one(docs, "PodDisruptionBudget", name)["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _labels_match(pdb["selector"]["matchLabels"], labels)
    if overlay.endswith("/prod"):
        assert one(docs, "HorizontalPodAutoscaler", "web")["spec"]["minReplicas"] >= 3


@pytest.mark.parametrize("overlay", [k8s.LOCAL_OVERLAY, k8s.PREVIEW_OVERLAY])
def test_local_and_preview_run_one_of_each_without_autoscaling(manifests, overlay):
    docs = manifests[overlay]
    for name in ("web", "worker", "beat"):
        assert one(docs, "Deployment", name)["spec"]["replicas"] == 1
    assert find(docs, "HorizontalPodAutoscaler") == []
    assert find(docs, "PodDisruptionBudget") == []


@overlays
def test_migrate_job_is_an_argocd_hook_ordered_after_what_it_needs(manifests, overlay):
    docs = manifests[overlay]
    job = one(docs, "Job", "migrate")
    annotations = job["metadata"]["annotations"]
    assert job["metadata"]["name"] == "migrate" and "generateName" not in job["metadata"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    def wave(doc):
        return int(doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", 0))

    prerequisites = [one(docs, "ServiceAccount", "todo"), one(docs, "ConfigMap", "todo-config")]
    prerequisites += find(docs, "NetworkPolicy") + find(docs, "ExternalSecret")
    # The Secret it reads where the overlay renders it, and the in-cluster database.
    prerequisites += find(docs, "Secret") + find(docs, "StatefulSet")
    prerequisites += [s for s in find(docs, "Service") if s["metadata"]["name"] != "web"]
    for doc in prerequisites:
        assert wave(doc) < wave(job), f"{k8s.object_id(doc)} must exist before migrate runs"
    for name in APP_PROCESSES:
        assert wave(job) < wave(one(docs, "Deployment", name)), f"{name} rolls out after migrate"


@overlays
def test_ingress_hosts_are_allowed_by_django(manifests, overlay):
    docs = manifests[overlay]
    ingress = one(docs, "Ingress", "web")["spec"]
    config = one(docs, "ConfigMap", "todo-config")["data"]
    allowed = config["DJANGO_ALLOWED_HOSTS"].split(",")
    for rule in ingress["rules"]:
        assert rule["host"] in allowed
    # Emailed links (password reset) point at the ingress's first host.
    site = urlsplit(config["DJANGO_SITE_URL"])
    assert site.hostname == ingress["rules"][0]["host"]
    assert site.scheme == ("http" if overlay == k8s.LOCAL_OVERLAY else "https")
    if overlay == k8s.LOCAL_OVERLAY:
        assert [rule["host"] for rule in ingress["rules"]] == ["todo.localhost"]
        assert "tls" not in ingress
    else:
        hosts = [rule["host"] for rule in ingress["rules"]]
        assert [host for tls in ingress["tls"] for host in tls["hosts"]] == hosts
        # Behind TLS the browser's Origin is https://host (SECURE_PROXY_SSL_HEADER).
        origins = config["DJANGO_CSRF_TRUSTED_ORIGINS"].split(",")
        assert origins == [f"https://{host}" for host in hosts]
        assert ingress["ingressClassName"] == "traefik"
        annotations = one(docs, "Ingress", "web")["metadata"]["annotations"]
        assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
        assert config["DJANGO_SECURE_SSL_REDIRECT"] == "true"
        assert config["DJANGO_DEBUG"] == "false"
