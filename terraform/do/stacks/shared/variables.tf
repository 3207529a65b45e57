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

variable "registry_name" {
  description = "Name of the account's container registry (DOCR allows one per account; globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]{3,63}$", var.registry_name))
    error_message = "registry_name must be 3-63 lowercase letters, digits or hyphens."
  }
}

variable "registry_tier" {
  description = "DOCR subscription tier: starter (1 repo, 500 MiB), basic (5 repos) or professional."
  type        = string
  default     = "basic"

  validation {
    condition     = contains(["starter", "basic", "professional"], var.registry_tier)
    error_message = "registry_tier must be starter, basic or professional."
  }
}

variable "region" {
  description = "Region of the registry's storage (close to the clusters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{3}[0-9]$", var.region))
    error_message = "region must be a DigitalOcean region slug such as fra1."
  }
}
