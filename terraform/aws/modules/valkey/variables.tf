variable "name" {
  description = "Name prefix, e.g. todo-stage; also the replication group id."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the cache subnet group."
  type        = list(string)
}

variable "allowed_security_groups" {
  description = "Security groups allowed to connect on 6379, by a name known at plan time (e.g. { eks_cluster = <sg id> })."
  type        = map(string)
}

variable "engine_version" {
  description = "Valkey version."
  type        = string
  default     = "8.0"

  validation {
    condition     = can(regex("^[78]\\.[0-9]$", var.engine_version))
    error_message = "engine_version must look like 8.0."
  }
}

variable "node_type" {
  description = "Cache node type, e.g. cache.t4g.micro (stage) or cache.m7g.large (prod)."
  type        = string

  validation {
    condition     = can(regex("^cache\\.[a-z0-9]+\\.[a-z0-9]+$", var.node_type))
    error_message = "node_type must look like cache.t4g.micro."
  }
}

variable "replicas" {
  description = "Read replicas besides the primary; one or more turns on automatic failover across AZs."
  type        = number

  validation {
    condition     = var.replicas >= 0 && var.replicas <= 5
    error_message = "replicas must be between 0 and 5."
  }
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots to keep (0 turns snapshots off)."
  type        = number
  default     = 7
}

variable "username" {
  description = "RBAC user the application authenticates as."
  type        = string
  default     = "todo"
}

variable "kms_key_arn" {
  description = "KMS key for data at rest and the slow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the slow log."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
