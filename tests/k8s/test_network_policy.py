"""Every pod that must receive traffic is admitted by some NetworkPolicy of its overlay, past the
base's default deny: web from the ingress controller, cert-manager's HTTP-01 solver (which the
clouds need for a certificate), Prometheus scrapes of annotated ports, and kubelet probes;
web admits nothing else, and every pod may still resolve names (the app: reach its data).

The policies are evaluated as the NetworkPolicy API defines them: a pod selected by a policy
with `Ingress` in its policyTypes accepts only what some such policy's rule admits (peer and
port); ports may be named (resolved against the receiving pod's container ports).
"""

from __future__ import annotations

import pytest

from ops import k8s

from .conftest import APP_WORKLOADS

NAMESPACE = "todo"
# Where the traffic comes from: the ingress controller's namespace (Contour from `invoke up`
# locally, Traefik from terraform's cluster-tooling in the clouds) and Prometheus'.
INGRESS_NAMESPACE = {k8s.LOCAL_OVERLAY: "projectcontour"} | dict.fromkeys(
    (*k8s.CLOUD_OVERLAYS, k8s.PREVIEW_OVERLAY), "traefik"
)
MONITORING_NAMESPACE = "monitoring"
# The pod cert-manager starts in the Ingress's namespace to answer an HTTP-01 challenge.
SOLVER = {
    "labels": {"acme.cert-manager.io/http01-solver": "true"},
    "ports": {"http": 8089},
}


def selects(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against a set of labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if not {
            "In": present and labels.get(key) in (values or []),
            "NotIn": not present or labels.get(key) not in (values or []),
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def admitted(policies: list[dict], pod: dict, source_namespace: str, port: int) -> list[str]:
    """Names of the policies that let a pod of `source_namespace` reach `port` of `pod`
    (['(not isolated)'] when no policy isolates it)."""
    isolating = [
        policy
        for policy in policies
        if "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
        and selects(policy["spec"]["podSelector"], pod["labels"])
    ]
    if not isolating:
        return ["(not isolated)"]
    source = {"kubernetes.io/metadata.name": source_namespace}

    def peer_matches(peer: dict) -> bool:
        if "ipBlock" in peer:
            return False  # pod sources here, never addressed by IP
        namespace = peer.get("namespaceSelector")
        if namespace is None:  # a podSelector alone means this namespace
            return source_namespace == NAMESPACE
        return selects(namespace, source)  # any pod of it (podSelector too broad to judge: {})

    def port_matches(entry: dict) -> bool:
        wanted = entry.get("port")
        number = pod["ports"].get(wanted, wanted)
        return entry.get("protocol", "TCP") == "TCP" and (wanted is None or number == port)

    return [
        policy["metadata"]["name"]
        for policy in isolating
        for rule in policy["spec"].get("ingress", [])
        if (not rule.get("from") or any(map(peer_matches, rule["from"])))
        and (not rule.get("ports") or any(map(port_matches, rule["ports"])))
    ]


def pods(docs: list[dict]) -> dict[str, dict]:
    """Each workload's pod: labels, named container ports, the pod spec, its annotations."""
    templates = {
        k8s.object_id(doc): doc["spec"]["template"]
        for doc in docs
        if doc["kind"] in ("Deployment", "StatefulSet", "Job")
    }
    return {
        name: {
            "labels": template["metadata"].get("labels", {}),
            "annotations": template["metadata"].get("annotations", {}),
            "ports": {
                port["name"]: port["containerPort"]
                for container in template["spec"]["containers"]
                for port in container.get("ports", [])
                if "name" in port
            },
            "spec": template["spec"],
        }
        for name, template in templates.items()
    }


def policies_of(docs: list[dict]) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_the_ingress_controller_reaches_every_pod_its_ingress_routes_to(manifests, overlay):
    docs = manifests[overlay]
    services = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Service"}
    routed = [
        path["backend"]["service"]
        for doc in docs
        if doc["kind"] == "Ingress"
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert routed, f"{overlay} routes nothing"
    for backend in routed:
        service = services[backend["name"]]
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"]]
        for name, pod in pods(docs).items():
            if selects({"matchLabels": service["spec"]["selector"]}, pod["labels"]):
                target = pod["ports"].get(port["targetPort"], port["targetPort"])
                assert admitted(policies_of(docs), pod, INGRESS_NAMESPACE[overlay], target), (
                    f"{overlay}: {INGRESS_NAMESPACE[overlay]} cannot reach {name} on {target}"
                )


@pytest.mark.parametrize("overlay", k8s.CLOUD_OVERLAYS)
def test_cert_manager_http01_solver_is_reachable_from_the_ingress_controller(manifests, overlay):
    docs = manifests[overlay]
    issuing = [
        doc
        for doc in docs
        if doc["kind"] == "Ingress"
        and "cert-manager.io/cluster-issuer" in doc["metadata"].get("annotations", {})
    ]
    assert issuing, f"{overlay} asks cert-manager for no certificate"
    assert admitted(policies_of(docs), SOLVER, INGRESS_NAMESPACE[overlay], 8089), (
        f"{overlay}: the default deny blocks the HTTP-01 solver, so no certificate is issued"
    )
    without = [p for p in policies_of(docs) if p["metadata"]["name"] != "acme-http01-solver"]
    assert admitted(without, SOLVER, INGRESS_NAMESPACE[overlay], 8089) == []


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_prometheus_reaches_every_port_a_pod_asks_to_be_scraped_on(manifests, overlay):
    docs = manifests[overlay]
    scraped = {
        name: pod
        for name, pod in pods(docs).items()
        if pod["annotations"].get("prometheus.io/scrape") == "true"
    }
    assert scraped, f"{overlay} has no scrape annotations"
    for name, pod in scraped.items():
        port = int(pod["annotations"]["prometheus.io/port"])
        assert port in pod["ports"].values(), f"{overlay}: {name} declares no port {port}"
        assert admitted(policies_of(docs), pod, MONITORING_NAMESPACE, port), (
            f"{overlay}: Prometheus ({MONITORING_NAMESPACE}) cannot scrape {name} on {port}"
        )


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_probes_use_the_pods_own_ports_or_run_inside_it(manifests, overlay):
    """The kubelet probes from the node, which NetworkPolicy always admits (Kubernetes'
    NetworkPolicy documentation); a probe must still name a port the container declares."""
    for name, pod in pods(manifests[overlay]).items():
        for container in pod["spec"]["containers"]:
            declared = {p["containerPort"] for p in container.get("ports", [])}
            declared |= {p["name"] for p in container.get("ports", []) if "name" in p}
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(kind)
                if probe is None or "exec" in probe:
                    continue
                action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
                assert action["port"] in declared, f"{overlay}: {name} {kind} on {action['port']}"


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_web_admits_the_ingress_controller_on_http_and_prometheus_on_metrics_only(
    manifests, overlay
):
    web = pods(manifests[overlay])["Deployment/web"]
    policies = policies_of(manifests[overlay])
    controller = INGRESS_NAMESPACE[overlay]
    allowed = {(controller, web["ports"]["http"]), (MONITORING_NAMESPACE, web["ports"]["metrics"])}
    for source in (controller, MONITORING_NAMESPACE, NAMESPACE, "default"):
        for port in web["ports"].values():
            reached = bool(admitted(policies, web, source, port))
            assert reached is ((source, port) in allowed), f"{overlay}: {source} -> web:{port}"


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_every_pod_is_denied_by_default_and_may_reach_dns_and_the_app_its_data(manifests, overlay):
    docs = manifests[overlay]
    policies = policies_of(docs)
    (deny,) = [p["spec"] for p in policies if p["metadata"]["name"] == "default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    in_cluster_or_aws = ("local", "preview", "aws/stage", "aws/prod")
    data_ports = {5432, 6379} if overlay in in_cluster_or_aws else {25060, 25061}
    for name, pod in pods(docs).items():
        ports = {
            port["port"]
            for policy in policies
            if "Egress" in policy["spec"]["policyTypes"]
            and selects(policy["spec"]["podSelector"], pod["labels"])
            for rule in policy["spec"].get("egress", [])
            for port in rule.get("ports", [])
        }
        assert 53 in ports, f"{overlay}: {name} cannot resolve names"
        if name in APP_WORKLOADS:
            assert data_ports <= ports, f"{overlay}: {name} cannot reach the database and broker"
