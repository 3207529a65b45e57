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

variable "email_url" {
  description = "EMAIL_URL of the app (smtp+tls://user:pass@host:587). A secret: set TF_VAR_email_url, never a tfvars file. Defaults to logging mail instead of sending it."
  type        = string
  default     = "consolemail://"
  sensitive   = true

  validation {
    condition     = can(regex("^(consolemail|smtp|smtps|smtp\\+tls|smtp\\+ssl)://", var.email_url))
    error_message = "email_url must be consolemail:// or an smtp://, smtp+tls:// or smtp+ssl:// URL."
  }
}

variable "monitoring" {
  description = "Install kube-prometheus-stack, for overlays that add kustomize/components/monitoring."
  type        = bool
  default     = false
}

variable "keda" {
  description = "Install KEDA, for overlays that add kustomize/components/keda-worker."
  type        = bool
  default     = false
}

variable "argocd_install_yaml" {
  description = "Argo CD's install manifest at the release versions.yaml pins; invoke tf.plan/apply download it (sha256 checked) and pass it."
  type        = string
}
