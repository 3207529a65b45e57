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
