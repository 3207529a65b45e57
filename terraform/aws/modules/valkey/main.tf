# ElastiCache Valkey replication group used as Celery broker and Django cache:
# TLS required in transit, encrypted at rest, RBAC users instead of the open
# default user, `noeviction` so a full broker rejects writes instead of
# silently dropping queued tasks, and automatic failover when replicas exist.

locals {
  failover = var.replicas > 0
}

# Generated once and pinned: terraform_data keeps the first value, so later
# plans do not rotate it. Rotate with `terraform apply -replace=...`.
data "aws_secretsmanager_random_password" "app_user" {
  password_length     = 64
  exclude_punctuation = true
}

resource "terraform_data" "app_user_password" {
  input = data.aws_secretsmanager_random_password.app_user.random_password

  lifecycle {
    ignore_changes = [input]
  }
}

data "aws_secretsmanager_random_password" "default_user" {
  password_length     = 64
  exclude_punctuation = true
}

resource "terraform_data" "default_user_password" {
  input = data.aws_secretsmanager_random_password.default_user.random_password

  lifecycle {
    ignore_changes = [input]
  }
}

# A user group must contain a user named "default"; this one is switched off.
resource "aws_elasticache_user" "default" {
  user_id       = "${var.name}-default"
  user_name     = "default"
  engine        = "valkey"
  access_string = "off -@all"

  authentication_mode {
    type      = "password"
    passwords = [sensitive(terraform_data.default_user_password.output)]
  }

  tags = var.tags
}

resource "aws_elasticache_user" "app" {
  user_id   = "${var.name}-${var.username}"
  user_name = var.username
  engine    = "valkey"
  # Celery and the Django cache need the usual data commands, not admin ones.
  access_string = "on ~* &* +@all -@dangerous"

  authentication_mode {
    type      = "password"
    passwords = [sensitive(terraform_data.app_user_password.output)]
  }

  tags = var.tags
}

resource "aws_elasticache_user_group" "this" {
  user_group_id = var.name
  engine        = "valkey"
  user_ids      = [aws_elasticache_user.default.user_id, aws_elasticache_user.app.user_id]

  tags = var.tags
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids

  tags = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-valkey"
  description = "Valkey: only from the EKS cluster"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-valkey" })
}

resource "aws_vpc_security_group_ingress_rule" "from_cluster" {
  # Keyed by static names: the IDs are unknown until the cluster exists.
  for_each = var.allowed_security_groups

  security_group_id            = aws_security_group.this.id
  description                  = "Valkey from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = each.value
}

resource "aws_elasticache_parameter_group" "this" {
  name        = "${var.name}-valkey${split(".", var.engine_version)[0]}"
  family      = "valkey${split(".", var.engine_version)[0]}"
  description = "Broker settings: never evict queued tasks"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "slow_log" {
  name              = "/aws/elasticache/${var.name}/slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "Celery broker and Django cache for ${var.name}"
  engine               = "valkey"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [aws_security_group.this.id]

  num_cache_clusters         = 1 + var.replicas
  automatic_failover_enabled = local.failover
  multi_az_enabled           = local.failover

  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  user_group_ids             = [aws_elasticache_user_group.this.user_group_id]

  auto_minor_version_upgrade = true
  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  tags = var.tags
}
