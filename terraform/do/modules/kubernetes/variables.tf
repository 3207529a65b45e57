variable "name" {
  description = "Cluster name, e.g. todo-stage."
  type        = string
}

variable "region" {
  description = "DigitalOcean region slug."
  type        = string
}

variable "vpc_id" {
  description = "VPC the nodes join."
  type        = string
}

variable "kubernetes_version_prefix" {
  description = "Kubernetes minor to run, as a prefix such as \"1.33.\"; the newest patch of it is picked and auto-upgrade keeps it current."
  type        = string
  default     = "1.33."

  validation {
    condition     = can(regex("^1\\.[0-9]+\\.$", var.kubernetes_version_prefix))
    error_message = "kubernetes_version_prefix must look like 1.33. (with the trailing dot)."
  }
}

variable "node_size" {
  description = "Droplet size of the worker nodes, e.g. s-2vcpu-4gb."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(-[a-z0-9]+)+$", var.node_size))
    error_message = "node_size must be a droplet size slug such as s-2vcpu-4gb."
  }
}

variable "node_count" {
  description = "Autoscaling bounds of the default node pool."
  type = object({
    min = number
    max = number
  })

  validation {
    condition     = var.node_count.min >= 1 && var.node_count.min <= var.node_count.max && var.node_count.max <= 100
    error_message = "node_count needs 1 <= min <= max <= 100."
  }
}

variable "high_availability" {
  description = "Replicated control plane (recommended for production)."
  type        = bool
}

variable "maintenance_window" {
  description = "When DigitalOcean may apply patch upgrades (UTC)."
  type = object({
    day        = string
    start_time = string
  })
  default = { day = "sunday", start_time = "03:00" }

  validation {
    condition     = contains(["any", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], var.maintenance_window.day) && can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.maintenance_window.start_time))
    error_message = "maintenance_window needs a weekday (or any) and an HH:MM start time."
  }
}

variable "api_allowed_addresses" {
  description = "Addresses (CIDRs) allowed to reach the Kubernetes API; empty leaves the API open to the internet (token-authenticated)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for address in var.api_allowed_addresses : can(cidrhost(address, 0))])
    error_message = "api_allowed_addresses must be CIDRs."
  }
}

variable "tags" {
  description = "Tags on the cluster and its nodes."
  type        = list(string)
  default     = []
}
