variable "name_prefix" {
  description = "Prefix of the secret names, e.g. todo/stage (secrets become todo/stage/django, ...)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9/_-]*[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be lowercase letters, digits, '/', '_' or '-'."
  }
}

variable "database" {
  description = "Where the application database lives; the password comes from the RDS-managed secret."
  type = object({
    host = string
    port = number
    name = string
  })
}

variable "redis_url" {
  description = "rediss:// URL of the Valkey replication group with the application user's credentials."
  type        = string
  sensitive   = true

  validation {
    condition     = startswith(var.redis_url, "rediss://")
    error_message = "redis_url must use TLS (rediss://)."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting the secrets."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once)."
  type        = number
  default     = 7

  validation {
    condition     = var.recovery_window_days == 0 || (var.recovery_window_days >= 7 && var.recovery_window_days <= 30)
    error_message = "recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "secret_tags" {
  description = "Tags that mark a secret as an input of the Kubernetes Secret todo-secrets (External Secrets finds them by these tags)."
  type        = map(string)
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
