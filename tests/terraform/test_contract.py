"""Both sides of the contract between terraform/ and kustomize/: the names, tags and JSON keys
Terraform writes are the ones the overlays' ExternalSecret and Secret references read, and the
Secret's name and keys are docs/contract.md's."""

from __future__ import annotations

import re

import pytest
import yaml

from ops import k8s, tf
from ops.tools import REPO_ROOT
from tests.k8s.checks import schema_problems
from tests.terraform.conftest import hcl, helm_values, named, parse

CONTRACT = (REPO_ROOT / "docs" / "contract.md").read_text()
RDS_SECRET_NAME = "rds!db-0a1b2c3d-4e5f-6789-abcd-ef0123456789"  # how RDS names it
RDS_SECRET_KEYS = {"username", "password"}  # what RDS stores in it


def contract_secret() -> tuple[str, set[str]]:
    match = re.search(r"Secret `([\w-]+)` with keys\s+((?:`\w+`,?\s*(?:and\s*)?)+)", CONTRACT)
    return match.group(1), set(re.findall(r"`(\w+)`", match.group(2)))


def locals_of(path: str) -> dict:
    return named(path, "locals")


def resource(path: str, tf_type: str, name: str) -> dict:
    for block in hcl(path).get("resource", []):
        if name in block.get(tf_type, {}):
            return block[tf_type][name]
    raise KeyError(f"{tf_type}.{name} not in {path}")


def variable_default(path: str, name: str):
    return named(path, "variable")[name].get("default")


def module_call(path: str, name: str) -> dict:
    return named(path, "module")[name]


def one(objects: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


# --- What terraform/aws writes ------------------------------------------------------------


def aws_secret_documents() -> dict[str, set[str]]:
    """Secret name (as ESO finds it) -> JSON keys, for stage; the RDS secret included."""
    app_secrets = locals_of("aws/modules/app-secrets")["generated"]
    documents = {name: set(keys) for name, keys in app_secrets.items()}
    email = resource("aws/modules/app-secrets", "aws_secretsmanager_secret_version", "email")
    documents["email"] = set(re.findall(r"(\w+) = ", email["secret_string"]))
    # name_prefix = "<project>/<environment>" in the infra stack
    prefix = module_call("aws/stacks/infra", "app_secrets")["name_prefix"]
    prefix = prefix.replace("${var.project}", variable_default("aws/stacks/infra", "project"))
    prefix = prefix.replace("${var.environment}", "stage")
    named = {f"{prefix}/{role}": keys for role, keys in documents.items()}
    named[RDS_SECRET_NAME] = RDS_SECRET_KEYS
    return named


def test_terraform_tags_every_secret_the_external_secret_needs():
    secret_tags = locals_of("aws/stacks/infra")["secret_tags"]
    calls = named("aws/stacks/infra", "module")
    # the app secrets and the RDS instance (RDS copies its tags onto its secret) get them
    assert calls["app_secrets"]["secret_tags"] == "${local.secret_tags}"
    assert calls["postgres"]["secret_tags"] == "${local.secret_tags}"
    db = resource("aws/modules/postgres", "aws_db_instance", "this")
    assert db["tags"] == "${merge(var.tags, var.secret_tags)}"
    for name in ("generated", "email"):
        secret = resource("aws/modules/app-secrets", "aws_secretsmanager_secret", name)
        assert secret["tags"] == "${merge(var.tags, var.secret_tags)}"
    assert secret_tags["todo:external-secret"] == "todo-secrets"


@pytest.mark.parametrize("env", tf.ENVIRONMENTS)
def test_external_secret_reads_what_terraform_writes(aws_overlays, env):
    external_secret = one(aws_overlays[env], "ExternalSecret", "todo-secrets")
    spec = external_secret["spec"]
    secret_tags = locals_of("aws/stacks/infra")["secret_tags"]

    (source,) = spec["dataFrom"]
    # Found by tags Terraform sets (the environment comes from the IAM role, not a tag).
    assert source["find"]["tags"].items() <= secret_tags.items()
    assert "todo:environment" not in source["find"]["tags"]

    # ESO's rewrite (Go regexp, $1 groups) applied to the names Terraform and RDS create.
    keys = {}
    for name, json_keys in aws_secret_documents().items():
        key = name
        for rewrite in source["rewrite"]:
            pattern = rewrite["regexp"]["source"]
            key = re.sub(pattern, rewrite["regexp"]["target"].replace("$", "\\"), key)
        assert re.fullmatch(r"[A-Za-z0-9_]+", key), f"{name} is not rewritten to a template key"
        keys[key] = json_keys
    assert len(keys) == len(aws_secret_documents()), "two secrets rewrite to the same key"

    template = spec["target"]["template"]["data"]
    text = "\n".join(template.values())
    referenced = set(re.findall(r"\.(\w+) \| fromJson", text))
    assert referenced == set(keys), "the template reads exactly the secrets it finds"
    # JSON properties read from each secret exist in what Terraform (or RDS) writes.
    variables = dict(re.findall(r"\$(\w+) := \.(\w+) \| fromJson", text))
    for key, prop in re.findall(r"\(\.(\w+) \| fromJson\)\.(\w+)", text):
        assert prop in keys[key], f"{key} has no {prop}"
    for variable, prop in re.findall(r"\$(\w+)\.(\w+)", text):
        assert prop in keys[variables[variable]], f"{variables[variable]} has no {prop}"


@pytest.mark.parametrize("env", tf.ENVIRONMENTS)
def test_external_secret_produces_the_contract_secret(aws_overlays, env):
    name, keys = contract_secret()
    external_secret = one(aws_overlays[env], "ExternalSecret", name)
    target = external_secret["spec"]["target"]
    assert target["name"] == name
    assert set(target["template"]["data"]) == keys
    url = target["template"]["data"]["DATABASE_URL"]
    assert "sslmode=require" in url and "urlquery" in url, "TLS, and the password URL-escaped"


@pytest.mark.parametrize("env", tf.ENVIRONMENTS)
def test_secret_store_is_the_one_terraform_creates(aws_overlays, env):
    store = resource("modules/cluster-config", "kubernetes_manifest", "cluster_secret_store")
    manifest = store["manifest"]
    external_secret = one(aws_overlays[env], "ExternalSecret", "todo-secrets")
    assert external_secret["spec"]["secretStoreRef"] == {
        "kind": manifest["kind"],
        "name": manifest["metadata"]["name"],
    }
    # the store serves only the namespace the overlays deploy to
    assert manifest["spec"]["conditions"] == [
        {"namespaces": [external_secret["metadata"]["namespace"]]}
    ]
    assert module_call("aws/stacks/apps", "config")["aws_secrets_manager_region"] == "${var.region}"


def test_eso_identity_binding_matches_the_installed_controller():
    access = "aws/modules/external-secrets-access"
    tooling = module_call("aws/stacks/tooling", "tooling")
    namespaces = locals_of("modules/cluster-tooling")["namespaces"]
    assert variable_default(access, "namespace") == namespaces["external_secrets"]
    assert (
        variable_default(access, "service_account")
        == tooling["external_secrets"]["service_account"]
    )
    readable = module_call("aws/stacks/infra", "external_secrets_access")["readable_secret_arns"]
    assert "module.app_secrets.secret_arns" in readable
    assert "module.postgres.master_user_secret_arn" in readable


# --- What terraform/do writes ---------------------------------------------------------------


def test_do_secret_is_the_contract_secret(do_overlays):
    name, keys = contract_secret()
    secret = resource("do/stacks/tooling", "kubernetes_secret_v1", "todo")
    namespace = resource("do/stacks/tooling", "kubernetes_namespace_v1", "todo")
    metadata = secret["metadata"][0]
    assert metadata["name"] == name
    assert set(secret["data"]) == keys
    assert metadata["namespace"] == "${kubernetes_namespace_v1.todo.metadata[0].name}"
    for env, objects in do_overlays.items():
        workloads = [o for o in objects if o["kind"] in ("Deployment", "Job")]
        assert workloads, env
        for workload in workloads:
            assert workload["metadata"]["namespace"] == namespace["metadata"][0]["name"], env
        assert not any(
            o["kind"] in ("Secret", "ExternalSecret") and o["metadata"]["name"] == name
            for o in objects
        ), f"do/{env} must not bring its own {name}: Terraform writes it"


def test_do_secret_values_come_from_the_private_managed_services():
    data = resource("do/stacks/tooling", "kubernetes_secret_v1", "todo")["data"]
    assert data["DATABASE_URL"] == "${data.digitalocean_database_connection_pool.app.private_uri}"
    assert data["REDIS_URL"] == "${data.digitalocean_database_cluster.valkey.private_uri}"
    # the names the tooling stack looks up are the ones the infra stack creates
    names = locals_of("do/stacks/tooling")["names"]
    infra_name = locals_of("do/stacks/infra")["name"]
    calls = named("do/stacks/infra", "module")
    assert names["cluster"] == infra_name
    assert names["postgres"] == calls["postgres"]["name"].replace("${local.name}", infra_name)
    assert names["valkey"] == calls["valkey"]["name"].replace("${local.name}", infra_name)
    assert names["pool"] == variable_default("do/modules/postgres", "database_name")


# --- Both clouds ------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", tf.CLOUDS)
def test_secret_and_config_map_do_not_overlap(cloud, aws_overlays, do_overlays):
    _, secret_keys = contract_secret()
    for env, objects in (aws_overlays if cloud == "aws" else do_overlays).items():
        config_maps = [
            o
            for o in objects
            if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("todo-config")
        ]
        assert len(config_maps) == 1, f"{cloud}/{env} generates todo-config itself"
        assert not secret_keys & set(config_maps[0]["data"]), f"{cloud}/{env}: a key in both"


@pytest.mark.parametrize("cloud", tf.CLOUDS)
def test_ingress_and_tls_use_what_the_tooling_installs(cloud, aws_overlays, do_overlays):
    issuer = resource("modules/cluster-config", "kubernetes_manifest", "cluster_issuer")["manifest"]
    tooling = locals_of("modules/cluster-tooling")
    namespaces = tooling["namespaces"]
    # cert-manager answers HTTP-01 challenges through the same class
    assert (
        variable_default("modules/cluster-config", "ingress_class_name")
        == tooling["ingress_class_name"]
    )
    for env, objects in (aws_overlays if cloud == "aws" else do_overlays).items():
        ingress = one(objects, "Ingress", "web")
        assert ingress["spec"]["ingressClassName"] == tooling["ingress_class_name"], (
            f"{cloud}/{env}"
        )
        annotation = ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
        assert annotation == issuer["metadata"]["name"], f"{cloud}/{env}"
        policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
        selectors = re.findall(r"kubernetes\.io/metadata\.name': '([\w-]+)'", str(policies))
        assert namespaces["traefik"] in selectors, (
            f"{cloud}/{env}: web admits the ingress namespace"
        )


@pytest.mark.parametrize("cloud", tf.CLOUDS)
@pytest.mark.parametrize("env", tf.ENVIRONMENTS)
def test_apps_stack_applies_the_argocd_objects_of_its_environment(cloud, env):
    """Each Application's overlay path: tests/k8s/test_argocd.py."""
    objects = k8s.documents(k8s.render(f"argocd/{cloud}/{env}"))
    namespace = locals_of("modules/cluster-tooling")["namespaces"]["argocd"]
    assert {
        o["metadata"]["namespace"] for o in objects if o["kind"] in ("Application", "AppProject")
    } == {namespace}
    assert (
        module_call(f"{cloud}/stacks/apps", "config")["argocd_manifests_yaml"]
        == "${var.argocd_manifests_yaml}"
    )


@pytest.mark.parametrize("cloud", tf.CLOUDS)
def test_later_stacks_find_the_cluster_by_the_name_infra_gives_it(cloud):
    infra_name = locals_of(f"{cloud}/stacks/infra")["name"]
    assert infra_name == "${var.project}-${var.environment}"
    assert locals_of(f"{cloud}/stacks/apps")["cluster_name"] == infra_name
    tooling = locals_of(f"{cloud}/stacks/tooling")
    assert tooling.get("cluster_name", tooling.get("names", {}).get("cluster")) == infra_name


def test_aws_readme_lists_the_secrets_terraform_writes():
    """terraform/aws/README.md is where docs/contract.md sends readers for the names."""
    readme = (tf.TERRAFORM_DIR / "aws" / "README.md").read_text()
    table = readme.split("## The secret contract", 1)[1].split("\n\n")
    rows = [line for part in table for line in part.splitlines() if line.startswith("| `")]
    listed = {}
    for row in rows:
        name_cell, properties_cell = row.split("|")[1:3]
        name = re.search(r"`([^`]+)`", name_cell).group(1).replace("<env>", "stage")
        listed[name] = set(re.findall(r"`([A-Za-z_]+)`", properties_cell))
    expected = aws_secret_documents()
    expected = {
        ("rds!db-<uuid>" if n == RDS_SECRET_NAME else n): keys for n, keys in expected.items()
    }
    assert listed == expected


@pytest.mark.parametrize("env", tf.ENVIRONMENTS)
def test_do_pods_pull_with_the_secret_the_registry_integration_writes(do_overlays, env):
    """DOKS' registry integration (on in the kubernetes module) writes `registry-<registry>`
    into every namespace and attaches it to `default` only: the `todo` ServiceAccount the
    pods run as must list it, or every pull from DOCR fails."""
    cluster = resource("do/modules/kubernetes", "digitalocean_kubernetes_cluster", "this")
    assert cluster["registry_integration"] is True
    objects = do_overlays[env]
    overlay = REPO_ROOT / f"kustomize/overlays/do/{env}/kustomization.yaml"
    (entry,) = [i for i in yaml.safe_load(overlay.read_text())["images"] if i["name"] == "todo"]
    host, registry, _ = entry["newName"].split("/", 2)
    assert host == "registry.digitalocean.com"
    account = one(objects, "ServiceAccount", "todo")
    assert account.get("imagePullSecrets") == [{"name": f"registry-{registry}"}]
    for workload in (o for o in objects if o["kind"] in ("Deployment", "Job")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "todo", k8s.object_id(workload)


@pytest.mark.parametrize("env", tf.ENVIRONMENTS)
def test_the_deploy_role_may_read_and_refresh_the_argo_cd_application(env):
    """`invoke deploy --wait` in GitHub Actions runs as the shared stack's deploy role: the
    infra example gives that role an access entry, whose group the apps stack binds to a Role
    covering the kubectl calls ops/release.py makes (get, annotate = patch)."""
    role = resource("aws/stacks/shared", "aws_iam_role", "github_deploy")["name"]
    role = role.replace("${var.project}", variable_default("aws/stacks/shared", "project"))
    example = parse(tf.TERRAFORM_DIR / f"aws/stacks/infra/{env}.tfvars.example")
    assert [arn.rsplit("/", 1)[1] for arn in example["deploy_role_arns"]] == [role]
    assert module_call("aws/stacks/infra", "eks")["deployer_principal_arns"] == (
        "${var.deploy_role_arns}"
    )
    group = variable_default("aws/modules/eks", "deployer_group")
    entry = resource("aws/modules/eks", "aws_eks_access_entry", "deployer")
    assert entry["kubernetes_groups"] == ["${var.deployer_group}"]
    assert module_call("aws/stacks/apps", "config")["deployer_group"] == group
    config = "modules/cluster-config"
    (rule,) = resource(config, "kubernetes_role_v1", "deployer")["rule"]
    assert rule["api_groups"] == ["argoproj.io"] and rule["resources"] == ["applications"]
    assert {"get", "patch"} <= set(rule["verbs"])
    assert (
        variable_default(config, "argocd_namespace")
        == (locals_of("modules/cluster-tooling")["namespaces"]["argocd"])
    )
    (subject,) = resource(config, "kubernetes_role_binding_v1", "deployer")["subject"]
    assert subject["kind"] == "Group" and subject["name"] == "${var.deployer_group}"


@pytest.mark.parametrize("cloud", tf.CLOUDS)
def test_reloader_rolls_workloads_in_a_way_argo_cd_self_heal_leaves_alone(cloud):
    """With selfHeal on, Reloader's default env-vars strategy is drift Argo CD reverts: each
    secret rotation would mean OutOfSync, a revert and a second rollout."""
    applications = [
        doc
        for env in tf.ENVIRONMENTS
        for doc in k8s.documents(k8s.render(f"argocd/{cloud}/{env}"))
        if doc["kind"] == "Application"
    ]
    assert any(app["spec"]["syncPolicy"]["automated"].get("selfHeal") for app in applications)
    values = helm_values("modules/cluster-tooling", "reloader")["reloader"]
    assert values["reloadStrategy"] == "annotations"
    assert values["autoReloadAll"] is True


def test_terraform_installs_what_the_opt_in_components_talk_to(do_overlays):
    """components/keda-worker queries kube-prometheus-stack's Prometheus Service, and
    base/networkpolicy.yaml admits scrapes from its namespace; both opt-in releases exist."""
    tooling = "modules/cluster-tooling"
    namespaces = locals_of(tooling)["namespaces"]
    prometheus = resource(tooling, "helm_release", "kube_prometheus_stack")
    assert resource(tooling, "helm_release", "keda")["count"] == "${var.keda ? 1 : 0}"
    assert prometheus["count"] == "${var.monitoring ? 1 : 0}"
    spec = helm_values(tooling, "kube_prometheus_stack")["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    scaled = yaml.safe_load(
        (REPO_ROOT / "kustomize/components/keda-worker/scaledobject.yaml").read_text()
    )
    (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    host = trigger["metadata"]["serverAddress"].split("//")[1].split(":")[0]
    assert host == f"{prometheus['name']}-prometheus.{namespaces['monitoring']}.svc"
    scrape = one(do_overlays["prod"], "NetworkPolicy", "metrics-scrape")
    (rule,) = scrape["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert namespaces["monitoring"] == "monitoring"
    for cloud in tf.CLOUDS:
        call = module_call(f"{cloud}/stacks/tooling", "tooling")
        assert (call["monitoring"], call["keda"]) == ("${var.monitoring}", "${var.keda}")


@pytest.mark.parametrize("name", ["cluster_issuer", "cluster_secret_store"])
def test_custom_resources_terraform_applies_match_their_pinned_crd(name):
    """The ClusterIssuer and ClusterSecretStore of cluster-config, as HCL reads them
    (references stay "${...}" strings, which every field they fill accepts)."""
    manifest = resource("modules/cluster-config", "kubernetes_manifest", name)["manifest"]
    assert schema_problems([manifest], versions=["1.34"]) == []
    misspelt = {**manifest, "spec": {**manifest["spec"], "acmee": {}}}
    assert schema_problems([misspelt], versions=["1.34"]), "the check can fail"
