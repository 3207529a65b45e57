# Infrastructure of one environment: network, EKS, RDS PostgreSQL, ElastiCache
# Valkey, the Secrets Manager entries behind the Kubernetes Secret todo-secrets,
# and the Pod Identity role External Secrets reads them with. Only the aws
# provider, so it validates and tests offline (tests/*.tftest.hcl).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  name       = "${var.project}-${var.environment}"
  production = var.environment == "prod" # multi-AZ, deletion protection, NAT per AZ, failover

  tags = {
    Project     = var.project
    Environment = var.environment
    ManagedBy   = "terraform"
    Stack       = "infra"
  }

  # The contract with kustomize/components/external-secrets-aws: every secret
  # that feeds the Kubernetes Secret todo-secrets carries exactly these tags.
  secret_tags = {
    "todo:external-secret" = "todo-secrets"
    "todo:environment"     = var.environment
  }

  availability_zones = slice(sort(data.aws_availability_zones.available.names), 0, 3)

  node_instance_types = coalesce(var.node_instance_types, local.production ? ["m6i.large"] : ["t3.medium"])
  node_count          = coalesce(var.node_count, local.production ? { min = 3, max = 9, desired = 3 } : { min = 2, max = 4, desired = 2 })
  db_instance_class   = coalesce(var.db_instance_class, local.production ? "db.m7g.large" : "db.t4g.small")
  cache_node_type     = coalesce(var.cache_node_type, local.production ? "cache.m7g.large" : "cache.t4g.small")
}

# One customer-managed key per environment for everything at rest. The
# account administers it through IAM; CloudWatch Logs may use it for this
# account's log groups (flow logs, EKS, slow log).
resource "aws_kms_key" "this" {
  description             = "${local.name}: EKS secrets, RDS, ElastiCache, Secrets Manager, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncrypts"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

module "network" {
  source = "../../modules/network"

  name               = local.name
  cidr_block         = var.vpc_cidr
  availability_zones = local.availability_zones
  single_nat_gateway = !local.production
  kms_key_arn        = aws_kms_key.this.arn
  cluster_name       = local.name
}

module "eks" {
  source = "../../modules/eks"

  name                 = local.name
  kubernetes_version   = var.kubernetes_version
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  public_access_cidrs  = var.cluster_public_access_cidrs
  kms_key_arn          = aws_kms_key.this.arn
  admin_principal_arns = var.cluster_admin_principal_arns
  # May only read and refresh the Argo CD Application (cluster-config's deployer Role).
  deployer_principal_arns = var.deploy_role_arns

  node_groups = {
    default = {
      instance_types = local.node_instance_types
      min_size       = local.node_count.min
      max_size       = local.node_count.max
      desired_size   = local.node_count.desired
    }
  }
}

module "postgres" {
  source = "../../modules/postgres"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  allowed_security_groups   = { eks_cluster = module.eks.cluster_security_group_id }
  instance_class            = local.db_instance_class
  allocated_storage_gib     = var.db_allocated_storage_gib
  max_allocated_storage_gib = var.db_allocated_storage_gib * 5
  multi_az                  = local.production
  deletion_protection       = local.production
  backup_retention_days     = local.production ? 14 : 7
  kms_key_arn               = aws_kms_key.this.arn
  secret_tags               = local.secret_tags
}

module "valkey" {
  source = "../../modules/valkey"

  name                    = local.name
  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.private_subnet_ids
  allowed_security_groups = { eks_cluster = module.eks.cluster_security_group_id }
  node_type               = local.cache_node_type
  replicas                = local.production ? 1 : 0
  kms_key_arn             = aws_kms_key.this.arn
}

module "app_secrets" {
  source = "../../modules/app-secrets"

  name_prefix = "${var.project}/${var.environment}"
  database = {
    host = module.postgres.address
    port = module.postgres.port
    name = module.postgres.database_name
  }
  redis_url            = module.valkey.redis_url
  kms_key_arn          = aws_kms_key.this.arn
  recovery_window_days = local.production ? 30 : 7
  secret_tags          = local.secret_tags
}

module "external_secrets_access" {
  source = "../../modules/external-secrets-access"

  name         = local.name
  cluster_name = module.eks.cluster_name
  readable_secret_arns = concat(
    values(module.app_secrets.secret_arns),
    [module.postgres.master_user_secret_arn],
  )
  kms_key_arn = aws_kms_key.this.arn
}

# External Secrets finds the RDS-managed secret by the tags RDS copied from the
# instance when it created the secret. Without them todo-secrets is never made, the
# sync never gets past wave -2 and the migrate hook never runs: so the plan (or, on
# the first apply, the apply) fails here, e.g. when the managed password was switched
# on for an existing instance. A warning would scroll by unseen.
data "aws_secretsmanager_secret" "rds_master" {
  arn = module.postgres.master_user_secret_arn

  lifecycle {
    postcondition {
      condition = alltrue([
        for key, value in local.secret_tags : lookup(self.tags, key, null) == value
      ])
      error_message = "The RDS-managed secret ${module.postgres.master_user_secret_arn} lacks the tags ${jsonencode(local.secret_tags)}, so External Secrets cannot find it. Add them: see 'Troubleshooting' in terraform/aws/README.md."
    }
  }
}
