variable "name" {
  description = "Valkey cluster name, e.g. todo-stage-valkey."
  type        = string
}

variable "region" {
  description = "DigitalOcean region slug."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache (private network only)."
  type        = string
}

variable "kubernetes_cluster_id" {
  description = "DOKS cluster admitted by the firewall."
  type        = string
}

variable "engine_version" {
  description = "Valkey major version."
  type        = string
  default     = "8"
}

variable "size" {
  description = "Node size, e.g. db-s-1vcpu-1gb."
  type        = string

  validation {
    condition     = startswith(var.size, "db-")
    error_message = "size must be a managed-database size slug such as db-s-1vcpu-1gb."
  }
}

variable "node_count" {
  description = "1 = primary only; 2 adds a standby that takes over on failure."
  type        = number

  validation {
    condition     = contains([1, 2], var.node_count)
    error_message = "node_count must be 1 or 2."
  }
}

variable "maintenance_window" {
  description = "Weekly maintenance window (UTC)."
  type = object({
    day  = string
    hour = string
  })
  default = { day = "sunday", hour = "04:00:00" }
}

variable "tags" {
  description = "Tags on the cluster."
  type        = list(string)
  default     = []
}

variable "trusted_app_ids" {
  description = "App Platform apps admitted besides the DOKS cluster (the app-platform stack's app_id)."
  type        = list(string)
  default     = []
}
