output "cluster_id" {
  description = "UUID of the database cluster."
  value       = digitalocean_database_cluster.this.id
}

output "cluster_name" {
  description = "Name of the database cluster (the tooling stack looks it up by it)."
  value       = digitalocean_database_cluster.this.name
}

output "cluster_urn" {
  description = "URN of the database cluster (project membership)."
  value       = digitalocean_database_cluster.this.urn
}

output "pool_name" {
  description = "Connection pool the application connects through."
  value       = digitalocean_database_connection_pool.app.name
}

output "private_host" {
  description = "Private hostname of the pool."
  value       = digitalocean_database_connection_pool.app.private_host
}
