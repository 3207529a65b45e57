# The Secrets Manager entries that, together with the RDS-managed master
# secret, make the Kubernetes Secret todo-secrets (see terraform/aws/README.md
# for the contract). Each is JSON; External Secrets finds them by secret_tags.

locals {
  # secret name suffix => JSON document Terraform writes
  generated = {
    django = {
      DJANGO_SECRET_KEY = sensitive(terraform_data.django_secret_key.output)
    }
    valkey = {
      REDIS_URL = var.redis_url
    }
    database = {
      DATABASE_HOST = var.database.host
      DATABASE_PORT = tostring(var.database.port)
      DATABASE_NAME = var.database.name
    }
  }
}

# Generated once and pinned (see modules/valkey for the pattern).
data "aws_secretsmanager_random_password" "django_secret_key" {
  password_length     = 64
  exclude_punctuation = true
}

resource "terraform_data" "django_secret_key" {
  input = data.aws_secretsmanager_random_password.django_secret_key.random_password

  lifecycle {
    ignore_changes = [input]
  }
}

resource "aws_secretsmanager_secret" "generated" {
  for_each = toset(keys(local.generated))

  name                    = "${var.name_prefix}/${each.key}"
  description             = "Terraform-generated input of the Kubernetes Secret todo-secrets"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days

  tags = merge(var.tags, var.secret_tags)
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = toset(keys(local.generated))

  secret_id     = aws_secretsmanager_secret.generated[each.key].id
  secret_string = jsonencode(local.generated[each.key])
}

# EMAIL_URL belongs to the operator (SMTP credentials are created outside
# Terraform). It starts as consolemail:// (mail is logged, not sent); set the
# real value with `aws secretsmanager put-secret-value`, Terraform keeps out.
resource "aws_secretsmanager_secret" "email" {
  name                    = "${var.name_prefix}/email"
  description             = "Operator-managed EMAIL_URL of the Kubernetes Secret todo-secrets"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days

  tags = merge(var.tags, var.secret_tags)
}

resource "aws_secretsmanager_secret_version" "email" {
  secret_id     = aws_secretsmanager_secret.email.id
  secret_string = jsonencode({ EMAIL_URL = "consolemail://" })

  lifecycle {
    ignore_changes = [secret_string, version_stages]
  }
}
