output "cluster_id" {
  description = "UUID of the cluster (database firewalls admit it)."
  value       = digitalocean_kubernetes_cluster.this.id
}

output "cluster_name" {
  description = "Cluster name; the tooling and apps stacks look the cluster up by it."
  value       = digitalocean_kubernetes_cluster.this.name
}

output "cluster_urn" {
  description = "URN of the cluster (project membership)."
  value       = digitalocean_kubernetes_cluster.this.urn
}

output "kubernetes_version" {
  description = "Kubernetes version the cluster runs."
  value       = digitalocean_kubernetes_cluster.this.version
}
