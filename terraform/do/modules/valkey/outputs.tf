output "cluster_id" {
  description = "UUID of the Valkey cluster."
  value       = digitalocean_database_cluster.this.id
}

output "cluster_name" {
  description = "Name of the Valkey cluster (the tooling stack looks it up by it)."
  value       = digitalocean_database_cluster.this.name
}

output "cluster_urn" {
  description = "URN of the Valkey cluster (project membership)."
  value       = digitalocean_database_cluster.this.urn
}

output "private_host" {
  description = "Private hostname of the primary."
  value       = digitalocean_database_cluster.this.private_host
}
