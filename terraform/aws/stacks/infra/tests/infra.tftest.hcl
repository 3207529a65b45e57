# The whole infrastructure stack, planned per environment against a mocked aws
# provider: what differs between stage and prod, and the secret contract.
mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-central-1a", "eu-central-1b", "eu-central-1c", "eu-central-1d"] }
  }

  mock_data "aws_caller_identity" {
    defaults = { account_id = "111122223333" }
  }

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }

  # Attributes other resources validate as ARNs: mocks would invent random strings.
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::111122223333:role/mock" }
  }

  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-central-1:111122223333:key/mock" }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-central-1:111122223333:log-group:mock" }
  }

  mock_resource "aws_launch_template" {
    defaults = { id = "lt-0123456789abcdef0" }
  }

  mock_resource "aws_eks_cluster" {
    defaults = {
      arn                   = "arn:aws:eks:eu-central-1:111122223333:cluster/mock"
      certificate_authority = [{ data = "bW9jaw==" }]
    }
  }

  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:mock-AbCdEf" }
  }
}

# RDS creates the master secret; give it a known ARN so the check block and
# the External Secrets policy can be evaluated at plan time.
override_resource {
  target = module.postgres.aws_db_instance.this
  values = {
    master_user_secret = [{
      secret_arn    = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:rds!db-0a1b2c3d-AbCdEf"
      kms_key_id    = "arn:aws:kms:eu-central-1:111122223333:key/test"
      secret_status = "active"
    }]
  }
}

variables {
  region                      = "eu-central-1"
  cluster_public_access_cidrs = ["203.0.113.0/24"]
}

run "stage" {
  command = apply

  variables {
    environment      = "stage"
    deploy_role_arns = ["arn:aws:iam::111122223333:role/todo-github-deploy"]
  }

  # Tags RDS copied from the instance onto the secret it created.
  override_data {
    target = data.aws_secretsmanager_secret.rds_master
    values = { tags = { "todo:external-secret" = "todo-secrets", "todo:environment" = "stage" } }
  }

  assert {
    condition     = module.network.nat_gateway_count == 1
    error_message = "Stage shares a single NAT gateway."
  }

  assert {
    condition     = !module.postgres.multi_az && !module.postgres.deletion_protection
    error_message = "Stage's database is single-AZ without deletion protection."
  }

  assert {
    condition     = !module.valkey.automatic_failover_enabled
    error_message = "Stage's cache is a single node."
  }

  assert {
    condition     = keys(module.eks.deployer_groups) == ["arn:aws:iam::111122223333:role/todo-github-deploy"] && module.eks.deployer_groups["arn:aws:iam::111122223333:role/todo-github-deploy"] == tolist(["todo-deployers"])
    error_message = "The deploy role gets an access entry in the deployers' group."
  }

  assert {
    condition     = output.cluster_name == "todo-stage"
    error_message = "Resources are named <project>-<environment>."
  }

  assert {
    condition     = output.external_secret_find_tags == { "todo:external-secret" = "todo-secrets", "todo:environment" = "stage" }
    error_message = "The find tags are the contract with the ExternalSecret."
  }

  assert {
    condition     = toset(values(output.app_secret_names)) == toset(["todo/stage/django", "todo/stage/valkey", "todo/stage/database", "todo/stage/email"])
    error_message = "Secret names follow <project>/<environment>/<role>."
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "The environment key rotates yearly."
  }

  assert {
    condition = contains(
      jsondecode(module.external_secrets_access.policy_json).Statement[1].Resource,
      "arn:aws:secretsmanager:eu-central-1:111122223333:secret:rds!db-0a1b2c3d-AbCdEf",
    )
    error_message = "External Secrets may read the RDS-managed master secret."
  }
}

run "prod" {
  command = apply

  variables {
    environment = "prod"
  }

  override_data {
    target = data.aws_secretsmanager_secret.rds_master
    values = { tags = { "todo:external-secret" = "todo-secrets", "todo:environment" = "prod" } }
  }

  assert {
    condition     = module.network.nat_gateway_count == 3
    error_message = "Prod runs one NAT gateway per AZ over three AZs."
  }

  assert {
    condition     = module.postgres.multi_az && module.postgres.deletion_protection
    error_message = "Prod's database is multi-AZ with deletion protection."
  }

  assert {
    condition     = module.valkey.automatic_failover_enabled
    error_message = "Prod's cache fails over to a replica."
  }

  assert {
    condition     = output.external_secret_find_tags["todo:environment"] == "prod"
    error_message = "Prod's secrets are tagged for prod only."
  }
}

run "fails_when_rds_secret_lacks_tags" {
  command = apply

  variables {
    environment = "stage"
  }

  override_data {
    target = data.aws_secretsmanager_secret.rds_master
    values = { tags = {} }
  }

  expect_failures = [data.aws_secretsmanager_secret.rds_master]
}

run "rejects_unknown_environment" {
  command = plan

  variables {
    environment = "dev"
  }

  expect_failures = [var.environment]
}
