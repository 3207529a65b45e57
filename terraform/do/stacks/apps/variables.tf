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

variable "acme_email" {
  description = "Address Let's Encrypt writes to about expiring certificates."
  type        = string
}

variable "acme_server" {
  description = "Let's Encrypt directory; use the staging one while you try things out."
  type        = string
  default     = "https://acme-v02.api.letsencrypt.org/directory"
}

variable "argocd_manifests_yaml" {
  description = "Rendered kustomize/argocd/do/<env> (AppProject todo, Application todo-do-<env>); invoke tf.plan/apply render and pass it."
  type        = string
}
