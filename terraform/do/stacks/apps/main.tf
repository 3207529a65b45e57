# What runs on the cluster once the tooling exists: the ClusterIssuer the
# overlays' Ingress names, and the Argo CD objects that sync
# kustomize/overlays/do/<env>.

locals {
  cluster_name = "${var.project}-${var.environment}"
}

module "config" {
  source = "../../../modules/cluster-config"

  acme_email            = var.acme_email
  acme_server           = var.acme_server
  argocd_manifests_yaml = var.argocd_manifests_yaml
}
