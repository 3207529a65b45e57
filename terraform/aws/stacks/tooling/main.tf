# Cluster tooling on EKS: Traefik behind a Network Load Balancer, cert-manager,
# External Secrets Operator (its AWS role is bound to its service account by
# the infra stack's Pod Identity association), Argo CD and Reloader.

locals {
  cluster_name = "${var.project}-${var.environment}"
}

module "tooling" {
  source = "../../../modules/cluster-tooling"

  ingress_service_annotations = {
    "service.beta.kubernetes.io/aws-load-balancer-type"                              = "nlb"
    "service.beta.kubernetes.io/aws-load-balancer-scheme"                            = "internet-facing"
    "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled" = "true"
  }
  ingress_replicas    = var.environment == "prod" ? 3 : 2
  argocd_install_yaml = var.argocd_install_yaml
  monitoring          = var.monitoring
  keda                = var.keda

  external_secrets = {
    enabled         = true
    service_account = "external-secrets"
  }
}
