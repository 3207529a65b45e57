# What runs on the cluster once the tooling exists: the ClusterIssuer, the
# ClusterSecretStore aws-secrets-manager that the ExternalSecret todo-secrets
# reads, and the Argo CD objects that sync kustomize/overlays/aws/<env>.

locals {
  cluster_name = "${var.project}-${var.environment}"
}

module "config" {
  source = "../../../modules/cluster-config"

  acme_email                 = var.acme_email
  acme_server                = var.acme_server
  aws_secrets_manager_region = var.region
  argocd_manifests_yaml      = var.argocd_manifests_yaml
  # The infra stack's access entries for deploy_role_arns put the deploy jobs in this group.
  deployer_group = "todo-deployers"
}
