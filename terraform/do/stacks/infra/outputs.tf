output "cluster_name" {
  description = "DOKS cluster name; the tooling and apps stacks look it up by it."
  value       = module.kubernetes.cluster_name
}

output "kubeconfig_command" {
  description = "Adds the cluster to your kubeconfig."
  value       = "doctl kubernetes cluster kubeconfig save ${module.kubernetes.cluster_name}"
}

output "kubernetes_version" {
  description = "Kubernetes version of the cluster."
  value       = module.kubernetes.kubernetes_version
}

output "postgres_cluster_name" {
  description = "Managed PostgreSQL cluster."
  value       = module.postgres.cluster_name
}

output "postgres_pool_name" {
  description = "PgBouncer pool the app connects through (DATABASE_URL)."
  value       = module.postgres.pool_name
}

output "valkey_cluster_name" {
  description = "Managed Valkey cluster."
  value       = module.valkey.cluster_name
}

output "project_id" {
  description = "DigitalOcean project grouping the environment."
  value       = digitalocean_project.this.id
}
