mock_provider "aws" {}

variables {
  name                    = "todo-test"
  vpc_id                  = "vpc-0123456789abcdef0"
  subnet_ids              = ["subnet-a", "subnet-b"]
  allowed_security_groups = { eks_cluster = "sg-cluster" }
  node_type               = "cache.t4g.small"
  kms_key_arn             = "arn:aws:kms:eu-central-1:111122223333:key/test"
}

run "stage_single_node" {
  command = apply

  variables {
    replicas = 0
  }

  assert {
    condition     = aws_elasticache_replication_group.this.transit_encryption_enabled && aws_elasticache_replication_group.this.transit_encryption_mode == "required"
    error_message = "Valkey must require TLS in transit."
  }

  assert {
    condition     = aws_elasticache_replication_group.this.at_rest_encryption_enabled && aws_elasticache_replication_group.this.kms_key_id == var.kms_key_arn
    error_message = "Valkey must be encrypted at rest with the environment's key."
  }

  assert {
    condition     = aws_elasticache_replication_group.this.engine == "valkey"
    error_message = "The replication group must run Valkey."
  }

  assert {
    condition     = anytrue([for p in aws_elasticache_parameter_group.this.parameter : p.name == "maxmemory-policy" && p.value == "noeviction"])
    error_message = "A broker must never evict keys (maxmemory-policy noeviction)."
  }

  assert {
    condition     = aws_elasticache_user.default.access_string == "off -@all"
    error_message = "The default user must be switched off; the app authenticates as its own user."
  }

  assert {
    condition     = length(aws_elasticache_replication_group.this.user_group_ids) == 1
    error_message = "Access goes through the RBAC user group."
  }

  assert {
    condition     = !aws_elasticache_replication_group.this.automatic_failover_enabled && aws_elasticache_replication_group.this.num_cache_clusters == 1
    error_message = "Without replicas there is a single node and no failover."
  }

  assert {
    condition     = startswith(output.redis_url, "rediss://todo:") && endswith(output.redis_url, ":6379/0")
    error_message = "REDIS_URL must be a TLS URL with the app user's credentials."
  }
}

run "prod_failover" {
  command = plan

  variables {
    replicas = 1
  }

  assert {
    condition     = aws_elasticache_replication_group.this.automatic_failover_enabled && aws_elasticache_replication_group.this.multi_az_enabled
    error_message = "With a replica, failover and multi-AZ must be on."
  }

  assert {
    condition     = aws_elasticache_replication_group.this.num_cache_clusters == 2
    error_message = "One replica means two cache nodes."
  }
}
