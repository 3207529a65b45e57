variable "name" {
  description = "Name prefix, e.g. todo-stage; also the DB instance identifier."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two AZs or more) for the DB subnet group."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "allowed_security_groups" {
  description = "Security groups allowed to connect on 5432, by a name known at plan time (e.g. { eks_cluster = <sg id> })."
  type        = map(string)
}

variable "engine_version" {
  description = "PostgreSQL major version; minor versions upgrade automatically in the maintenance window."
  type        = string
  default     = "17"

  validation {
    condition     = contains(["16", "17"], var.engine_version)
    error_message = "engine_version must be 16 or 17."
  }
}

variable "instance_class" {
  description = "DB instance class, e.g. db.t4g.micro (stage) or db.m7g.large (prod)."
  type        = string

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.instance_class))
    error_message = "instance_class must look like db.t4g.micro."
  }
}

variable "allocated_storage_gib" {
  description = "Initial storage in GiB (gp3)."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage_gib >= 20 && var.allocated_storage_gib <= 65536
    error_message = "allocated_storage_gib must be between 20 and 65536."
  }
}

variable "max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "database_name" {
  description = "Database created on the instance."
  type        = string
  default     = "todo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must start with a letter and hold only lowercase letters, digits and underscores."
  }
}

variable "master_username" {
  description = "Master user name; RDS generates its password and keeps it in Secrets Manager."
  type        = string
  default     = "todo"
}

variable "multi_az" {
  description = "Synchronous standby in a second AZ with automatic failover."
  type        = bool
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (and take a final snapshot when it is deleted after this is turned off)."
  type        = bool
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the master-password secret."
  type        = string
}

variable "secret_tags" {
  description = "Tags RDS copies onto the master-password secret it creates; External Secrets finds the secret by them."
  type        = map(string)
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
