output "primary_endpoint" {
  description = "Hostname of the primary (follows failover)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Valkey port."
  value       = aws_elasticache_replication_group.this.port
}

output "username" {
  description = "RBAC user of the application."
  value       = aws_elasticache_user.app.user_name
}

output "redis_url" {
  description = "rediss:// URL with the application user's credentials (database 0)."
  value       = "rediss://${aws_elasticache_user.app.user_name}:${terraform_data.app_user_password.output}@${aws_elasticache_replication_group.this.primary_endpoint_address}:${aws_elasticache_replication_group.this.port}/0"
  sensitive   = true
}

output "security_group_id" {
  description = "Security group of the cache."
  value       = aws_security_group.this.id
}

output "automatic_failover_enabled" {
  description = "Whether a replica takes over when the primary fails."
  value       = aws_elasticache_replication_group.this.automatic_failover_enabled
}
