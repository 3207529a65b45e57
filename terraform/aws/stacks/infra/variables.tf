# Common to every stack of terraform/aws, each declaring them alike: values from
# terraform/aws/common.tfvars, environment from `invoke tf.plan --env` (terraform/README.md).
variable "project" {
  description = "Project name. Resources are named <project>-<environment>: that is how each stack finds what the ones before it made."
  type        = string
  default     = "todo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment: stage or prod (`invoke tf.plan --env` passes it)."
  type        = string

  validation {
    condition     = contains(["stage", "prod"], var.environment)
    error_message = "environment must be stage or prod."
  }
}

variable "region" {
  description = "AWS region of every stack, e.g. eu-central-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like eu-central-1."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (/18 or larger)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version."
  type        = string
  default     = "1.33"
}

variable "cluster_public_access_cidrs" {
  description = "CIDRs allowed to reach the Kubernetes API (where you and CI run Terraform's tooling stack and kubectl). GitHub-hosted runners have no fixed addresses: add a larger runner's static range or a self-hosted runner's egress, or deploy without --wait (docs/deploy.md)."
  type        = list(string)
}

variable "cluster_admin_principal_arns" {
  description = "IAM roles/users given cluster-admin by EKS access entries, besides whoever creates the cluster."
  type        = list(string)
  default     = []
}

variable "deploy_role_arns" {
  description = "Roles release jobs assume (terraform output github_deploy_role_arn of stacks/shared): EKS access entries that may read and refresh the Argo CD Application for `invoke deploy --wait`."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the default node group; null picks t3.medium for stage and m6i.large for prod."
  type        = list(string)
  default     = null
}

variable "node_count" {
  description = "Scaling bounds of the default node group; null picks 2..4 for stage and 3..9 for prod."
  type = object({
    min     = number
    max     = number
    desired = number
  })
  default = null

  validation {
    condition     = var.node_count == null || try(var.node_count.min >= 1 && var.node_count.min <= var.node_count.desired && var.node_count.desired <= var.node_count.max, false)
    error_message = "node_count needs 1 <= min <= desired <= max."
  }
}

variable "db_instance_class" {
  description = "RDS instance class; null picks db.t4g.small for stage and db.m7g.large for prod."
  type        = string
  default     = null
}

variable "db_allocated_storage_gib" {
  description = "Initial RDS storage in GiB (it grows automatically up to 5x)."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage_gib >= 20 && var.db_allocated_storage_gib <= 13107
    error_message = "db_allocated_storage_gib must be between 20 and 13107 (5x fits the 65536 GiB ceiling)."
  }
}

variable "cache_node_type" {
  description = "ElastiCache node type; null picks cache.t4g.small for stage and cache.m7g.large for prod."
  type        = string
  default     = null
}
