output "address" {
  description = "Hostname of the DB instance (private DNS)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Name of the application database."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Master user name (its password is in the RDS-managed secret)."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "ARN of the RDS-managed secret holding {\"username\", \"password\"} of the master user."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}

output "multi_az" {
  description = "Whether a synchronous standby runs in a second AZ."
  value       = aws_db_instance.this.multi_az
}

output "deletion_protection" {
  description = "Whether the instance refuses deletion."
  value       = aws_db_instance.this.deletion_protection
}
