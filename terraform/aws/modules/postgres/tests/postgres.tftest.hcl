# Offline: the aws provider is mocked, so these runs check what the module
# asks AWS for, not what AWS returns.
mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  name                    = "todo-test"
  vpc_id                  = "vpc-0123456789abcdef0"
  subnet_ids              = ["subnet-a", "subnet-b", "subnet-c"]
  allowed_security_groups = { eks_cluster = "sg-cluster" }
  instance_class          = "db.t4g.small"
  kms_key_arn             = "arn:aws:kms:eu-central-1:111122223333:key/test"
  secret_tags             = { "todo:external-secret" = "todo-secrets", "todo:environment" = "stage" }
}

run "stage_shape" {
  command = plan

  variables {
    multi_az            = false
    deletion_protection = false
  }

  assert {
    condition     = aws_db_instance.this.storage_encrypted && aws_db_instance.this.kms_key_id == var.kms_key_arn
    error_message = "Storage must be encrypted with the environment's KMS key."
  }

  assert {
    condition     = aws_db_instance.this.publicly_accessible == false
    error_message = "The database must not be publicly accessible."
  }

  assert {
    condition     = aws_db_instance.this.manage_master_user_password && aws_db_instance.this.master_user_secret_kms_key_id == var.kms_key_arn
    error_message = "RDS must manage the master password in Secrets Manager, encrypted with the environment's key."
  }

  assert {
    condition     = anytrue([for p in aws_db_parameter_group.this.parameter : p.name == "rds.force_ssl" && p.value == "1"])
    error_message = "The parameter group must require TLS (rds.force_ssl = 1)."
  }

  assert {
    condition     = aws_db_instance.this.backup_retention_period >= 7
    error_message = "Automated backups must be kept at least 7 days."
  }

  assert {
    condition     = !aws_db_instance.this.multi_az && !aws_db_instance.this.deletion_protection && aws_db_instance.this.skip_final_snapshot
    error_message = "Stage runs single-AZ and can be torn down without a final snapshot."
  }

  assert {
    condition     = aws_db_instance.this.tags["todo:external-secret"] == "todo-secrets"
    error_message = "The instance must carry the secret tags RDS copies onto its master secret."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.from_cluster["eks_cluster"].from_port == 5432 && aws_vpc_security_group_ingress_rule.from_cluster["eks_cluster"].referenced_security_group_id == "sg-cluster"
    error_message = "Only the cluster security group may reach 5432."
  }
}

run "prod_shape" {
  command = plan

  variables {
    multi_az              = true
    deletion_protection   = true
    backup_retention_days = 14
  }

  assert {
    condition     = aws_db_instance.this.multi_az && aws_db_instance.this.deletion_protection
    error_message = "Prod runs multi-AZ with deletion protection."
  }

  assert {
    condition     = !aws_db_instance.this.skip_final_snapshot && aws_db_instance.this.final_snapshot_identifier == "todo-test-final"
    error_message = "Prod takes a final snapshot before deletion."
  }
}

run "rejects_unknown_engine_version" {
  command = plan

  variables {
    multi_az            = false
    deletion_protection = false
    engine_version      = "12"
  }

  expect_failures = [var.engine_version]
}
