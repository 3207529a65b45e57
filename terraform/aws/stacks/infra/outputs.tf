output "environment" {
  description = "Environment of this stack."
  value       = var.environment
}

output "region" {
  description = "AWS region."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name; the tooling and apps stacks look it up by this name."
  value       = module.eks.cluster_name
}

output "kubeconfig_command" {
  description = "Adds the cluster to your kubeconfig."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "vpc_id" {
  description = "VPC ID."
  value       = module.network.vpc_id
}

output "database_address" {
  description = "RDS PostgreSQL hostname (private)."
  value       = module.postgres.address
}

output "database_master_secret_arn" {
  description = "RDS-managed secret with the master credentials (rotated by RDS)."
  value       = module.postgres.master_user_secret_arn
}

output "cache_primary_endpoint" {
  description = "ElastiCache Valkey primary endpoint (private, TLS)."
  value       = module.valkey.primary_endpoint
}

output "app_secret_names" {
  description = "Secrets Manager entries Terraform writes for todo-secrets (email is yours to set)."
  value       = module.app_secrets.secret_names
}

output "external_secret_find_tags" {
  description = "Tags the ExternalSecret todo-secrets searches for (kustomize/components/external-secrets-aws)."
  value       = local.secret_tags
}

output "external_secrets_role_arn" {
  description = "IAM role the External Secrets controller assumes through Pod Identity."
  value       = module.external_secrets_access.role_arn
}

output "kms_key_arn" {
  description = "KMS key of this environment."
  value       = aws_kms_key.this.arn
}
