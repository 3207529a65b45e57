# Cluster-wide objects of custom kinds, applied once the tooling stack has
# installed their CRDs (kubernetes_manifest needs the CRD at plan time, which
# is why these live in their own stack):
#   ClusterIssuer letsencrypt        cert-manager; the overlays' Ingress names it
#   ClusterSecretStore aws-secrets-manager   AWS only; the ExternalSecret todo-secrets reads it
#   the AppProject and Application(s) from kustomize/argocd/<cloud>/<env>

locals {
  argocd_objects = {
    for object in provider::kubernetes::manifest_decode_multi(var.argocd_manifests_yaml) :
    "${object.kind}/${object.metadata.name}" => object
  }
}

resource "kubernetes_manifest" "cluster_issuer" {
  manifest = {
    apiVersion = "cert-manager.io/v1"
    kind       = "ClusterIssuer"
    metadata   = { name = "letsencrypt" }
    spec = {
      acme = {
        server              = var.acme_server
        email               = var.acme_email
        privateKeySecretRef = { name = "letsencrypt-account-key" }
        solvers = [{
          http01 = { ingress = { ingressClassName = var.ingress_class_name } }
        }]
      }
    }
  }
}

resource "kubernetes_manifest" "cluster_secret_store" {
  count = var.aws_secrets_manager_region == null ? 0 : 1

  manifest = {
    apiVersion = "external-secrets.io/v1"
    kind       = "ClusterSecretStore"
    metadata   = { name = "aws-secrets-manager" }
    spec = {
      # Only the app namespace may use the store.
      conditions = [{ namespaces = ["todo"] }]
      provider = {
        aws = {
          service = "SecretsManager"
          region  = var.aws_secrets_manager_region
          # No auth block: the controller's own credentials, from EKS Pod Identity.
        }
      }
    }
  }
}

resource "kubernetes_manifest" "argocd" {
  for_each = local.argocd_objects

  manifest = each.value

  # Argo CD adds status and operation fields to its objects.
  computed_fields = ["metadata.labels", "metadata.annotations", "status", "operation"]
}

# Release jobs that reach the cluster as a group of their own (AWS: the EKS access entries of
# deploy_role_arns) may read the Argo CD Applications and refresh them, which is all
# `invoke deploy --wait` and `invoke argocd.status` do.
resource "kubernetes_role_v1" "deployer" {
  count = var.deployer_group == null ? 0 : 1

  metadata {
    name      = "todo-deployer"
    namespace = var.argocd_namespace
  }

  rule {
    api_groups = ["argoproj.io"]
    resources  = ["applications"]
    verbs      = ["get", "list", "watch", "patch"]
  }
}

resource "kubernetes_role_binding_v1" "deployer" {
  count = var.deployer_group == null ? 0 : 1

  metadata {
    name      = "todo-deployer"
    namespace = var.argocd_namespace
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.deployer[0].metadata[0].name
  }

  subject {
    kind      = "Group"
    name      = var.deployer_group
    api_group = "rbac.authorization.k8s.io"
  }
}
