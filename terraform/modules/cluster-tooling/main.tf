# Cluster tooling shared by both clouds, installed with Helm:
#   traefik          ingress class `traefik` behind the cloud's load balancer
#   cert-manager     TLS certificates (the ClusterIssuer comes with the apps stack)
#   external-secrets optional: the AWS Secret todo-secrets from Secrets Manager
#   argo-cd          syncs kustomize/overlays/<cloud>/<env> (its upstream manifest, not a chart)
#   reloader         restarts workloads when a Secret or ConfigMap they use changes
#   opt-in: kube-prometheus-stack (Prometheus Operator, for components/monitoring) and
#   KEDA (for components/keda-worker), each behind a variable
# Namespaces are the contract with kustomize/base (NetworkPolicies admit the
# `traefik` namespace) and with the cloud identity bindings (`external-secrets`).

locals {
  # The overlays' Ingress objects name this class (kustomize/components/cloud-ingress).
  ingress_class_name = "traefik"

  namespaces = {
    traefik          = "traefik"
    cert_manager     = "cert-manager"
    external_secrets = "external-secrets"
    argocd           = "argocd"
    reloader         = "reloader"
    # base/networkpolicy.yaml admits scrapes from here; keda-worker's trigger queries the
    # Prometheus Service kube-prometheus-stack-prometheus in it.
    monitoring = "monitoring"
    keda       = "keda"
  }
}

resource "helm_release" "traefik" {
  name             = "traefik"
  namespace        = local.namespaces.traefik
  create_namespace = true
  repository       = "https://traefik.github.io/charts"
  chart            = "traefik"
  version          = var.chart_versions.traefik
  atomic           = true
  timeout          = 600

  values = [yamlencode({
    deployment = { replicas = var.ingress_replicas }
    podDisruptionBudget = {
      enabled        = var.ingress_replicas > 1
      maxUnavailable = 1
    }
    ingressClass = {
      enabled        = true
      isDefaultClass = true
      name           = local.ingress_class_name
    }
    providers = {
      kubernetesIngress = {
        # Writes the load balancer's address into each Ingress status.
        publishedService = { enabled = true }
      }
      # The overlays use plain Ingress objects only.
      kubernetesCRD = { enabled = false }
    }
    service = {
      type        = "LoadBalancer"
      annotations = var.ingress_service_annotations
    }
  })]
}

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  namespace        = local.namespaces.cert_manager
  create_namespace = true
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.chart_versions.cert_manager
  atomic           = true
  timeout          = 600

  values = [yamlencode({
    crds = { enabled = true, keep = true }
  })]
}

resource "helm_release" "external_secrets" {
  count = var.external_secrets.enabled ? 1 : 0

  name             = "external-secrets"
  namespace        = local.namespaces.external_secrets
  create_namespace = true
  repository       = "https://charts.external-secrets.io"
  chart            = "external-secrets"
  version          = var.chart_versions.external_secrets
  atomic           = true
  timeout          = 600

  values = [yamlencode({
    installCRDs = true
    serviceAccount = {
      create = true
      # The cloud binds its identity (EKS Pod Identity) to this exact name.
      name = var.external_secrets.service_account
    }
  })]
}

# Argo CD from its upstream manifest at the release versions.yaml pins (manifests.argo-cd,
# argo-cd-ha in prod): the files `invoke cluster.check` installs in kind, whose CRDs tests/k8s
# validates the Applications against. `invoke tf.plan/apply` download it (sha256 checked) and
# pass it in, so the release is pinned in one place. Its API server stays a ClusterIP Service:
# reach it with `kubectl -n argocd port-forward svc/argocd-server 8080:443`.
resource "kubernetes_namespace_v1" "argocd" {
  metadata {
    name = local.namespaces.argocd
  }
}

locals {
  argocd_objects = provider::kubernetes::manifest_decode_multi(var.argocd_install_yaml)
  cluster_scoped = ["CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"]
  # The manifest leaves the namespace of its namespaced objects to `kubectl apply -n`.
  argocd_manifests = merge(
    { for o in local.argocd_objects : "${o.kind}/${o.metadata.name}" => o if contains(local.cluster_scoped, o.kind) },
    {
      for o in local.argocd_objects : "${o.kind}/${o.metadata.name}" => merge(o, { metadata = merge(o.metadata, { namespace = local.namespaces.argocd }) })
      if !contains(local.cluster_scoped, o.kind)
    },
  )
}

resource "kubernetes_manifest" "argocd" {
  for_each = local.argocd_manifests

  manifest = each.value

  depends_on = [kubernetes_namespace_v1.argocd]
}

resource "helm_release" "reloader" {
  name             = "reloader"
  namespace        = local.namespaces.reloader
  create_namespace = true
  repository       = "https://stakater.github.io/stakater-charts"
  chart            = "reloader"
  version          = var.chart_versions.reloader
  atomic           = true
  timeout          = 300

  values = [yamlencode({
    reloader = {
      # Restart any workload whose Secret or ConfigMap changed (todo-secrets
      # after a password rotation), without annotating the manifests.
      autoReloadAll = true
      watchGlobally = true
      # Roll by an annotation on the pod template, not an injected env var: Argo CD's
      # self-heal takes the env var for drift and reverts it, a second rollout per
      # rotation (Reloader's documentation recommends this strategy for GitOps).
      reloadStrategy = "annotations"
    }
  })]
}

resource "helm_release" "kube_prometheus_stack" {
  count = var.monitoring ? 1 : 0

  name             = "kube-prometheus-stack"
  namespace        = local.namespaces.monitoring
  create_namespace = true
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.chart_versions.kube_prometheus_stack
  atomic           = true
  timeout          = 900

  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        # Pick up the ServiceMonitors and PrometheusRule of components/monitoring, which
        # carry no `release` label.
        serviceMonitorSelectorNilUsesHelmValues = false
        ruleSelectorNilUsesHelmValues           = false
      }
    }
    # The dashboard ConfigMap lives in the app's namespace.
    grafana = { sidecar = { dashboards = { searchNamespace = "ALL" } } }
  })]
}

resource "helm_release" "keda" {
  count = var.keda ? 1 : 0

  name             = "keda"
  namespace        = local.namespaces.keda
  create_namespace = true
  repository       = "https://kedacore.github.io/charts"
  chart            = "keda"
  version          = var.chart_versions.keda
  atomic           = true
  timeout          = 600
}
