# Common to every stack of terraform/do, each declaring them alike: values from
# terraform/do/common.tfvars, environment from `invoke tf.plan --env` (terraform/README.md).
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
  description = "DigitalOcean region slug, e.g. fra1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{3}[0-9]$", var.region))
    error_message = "region must be a DigitalOcean region slug such as fra1."
  }
}

variable "vpc_ip_range" {
  description = "Private IPv4 range of the environment's VPC (distinct per environment)."
  type        = string
}

variable "kubernetes_version_prefix" {
  description = "Kubernetes minor, e.g. \"1.33.\"."
  type        = string
  default     = "1.33."
}

variable "api_allowed_addresses" {
  description = "CIDRs allowed to reach the Kubernetes API (you, CI); empty leaves it internet-reachable."
  type        = list(string)
  default     = []
}

variable "node_size" {
  description = "Worker droplet size; null picks s-2vcpu-4gb (stage) or s-4vcpu-8gb (prod)."
  type        = string
  default     = null
}

variable "node_count" {
  description = "Autoscaling bounds; null picks 2..4 (stage) or 3..8 (prod)."
  type = object({
    min = number
    max = number
  })
  default = null
}

variable "postgres_size" {
  description = "PostgreSQL node size; null picks db-s-1vcpu-2gb (stage) or db-s-2vcpu-4gb (prod)."
  type        = string
  default     = null
}

variable "valkey_size" {
  description = "Valkey node size; null picks db-s-1vcpu-1gb (stage) or db-s-1vcpu-2gb (prod)."
  type        = string
  default     = null
}

variable "trusted_app_ids" {
  description = "App Platform apps the databases admit besides the DOKS cluster: the app_id output of stacks/app-platform, when stage runs there."
  type        = list(string)
  default     = []
}
