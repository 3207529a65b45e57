variable "name" {
  description = "Database cluster name, e.g. todo-stage-pg."
  type        = string
}

variable "region" {
  description = "DigitalOcean region slug."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database (private network only)."
  type        = string
}

variable "kubernetes_cluster_id" {
  description = "DOKS cluster admitted by the database firewall (the only trusted source)."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "17"

  validation {
    condition     = contains(["16", "17"], var.engine_version)
    error_message = "engine_version must be 16 or 17."
  }
}

variable "size" {
  description = "Node size, e.g. db-s-1vcpu-2gb."
  type        = string

  validation {
    condition     = startswith(var.size, "db-")
    error_message = "size must be a managed-database size slug such as db-s-1vcpu-2gb."
  }
}

variable "node_count" {
  description = "1 = primary only; 2 or 3 add standby nodes that take over on failure."
  type        = number

  validation {
    condition     = contains([1, 2, 3], var.node_count)
    error_message = "node_count must be 1, 2 or 3."
  }
}

variable "database_name" {
  description = "Application database."
  type        = string
  default     = "todo"
}

variable "username" {
  description = "Application user (DigitalOcean generates its password)."
  type        = string
  default     = "todo"
}

variable "pool_size" {
  description = "Server connections of the PgBouncer pool the application connects through."
  type        = number
  default     = 20

  validation {
    condition     = var.pool_size >= 1 && var.pool_size <= 100
    error_message = "pool_size must be between 1 and 100 (and fit the plan's connection limit)."
  }
}

variable "pool_mode" {
  description = "PgBouncer mode. session is safe for any Django code; transaction multiplexes better but needs DISABLE_SERVER_SIDE_CURSORS and no prepared statements (OPTIONS prepare_threshold None) in Django's settings."
  type        = string
  default     = "session"

  validation {
    condition     = contains(["session", "transaction"], var.pool_mode)
    error_message = "pool_mode must be session or transaction."
  }
}

variable "maintenance_window" {
  description = "Weekly maintenance window (UTC)."
  type = object({
    day  = string
    hour = string
  })
  default = { day = "sunday", hour = "02:00:00" }
}

variable "tags" {
  description = "Tags on the database cluster."
  type        = list(string)
  default     = []
}

variable "trusted_app_ids" {
  description = "App Platform apps admitted besides the DOKS cluster (the app-platform stack's app_id)."
  type        = list(string)
  default     = []
}
