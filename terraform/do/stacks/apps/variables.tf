variable "project" {
  description = "Project name (as in the infra stack)."
  type        = string
  default     = "todo"
}

variable "environment" {
  description = "Environment: stage or prod."
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
