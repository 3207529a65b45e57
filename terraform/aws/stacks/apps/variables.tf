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

variable "region" {
  description = "AWS region of the environment (and of its Secrets Manager entries)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like eu-central-1."
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
  description = "Rendered kustomize/argocd/aws/<env> (AppProject todo, Application todo-aws-<env>); invoke tf.plan/apply render and pass it."
  type        = string
}
