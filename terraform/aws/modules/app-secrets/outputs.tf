output "secret_arns" {
  description = "ARNs of the secrets by role: django, valkey, database, email."
  value = merge(
    { for key, secret in aws_secretsmanager_secret.generated : key => secret.arn },
    { email = aws_secretsmanager_secret.email.arn },
  )
}

output "secret_names" {
  description = "Names of the secrets by role: django, valkey, database, email."
  value = merge(
    { for key, secret in aws_secretsmanager_secret.generated : key => secret.name },
    { email = aws_secretsmanager_secret.email.name },
  )
}
