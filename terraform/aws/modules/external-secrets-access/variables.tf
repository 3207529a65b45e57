variable "name" {
  description = "Name prefix, e.g. todo-stage."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster whose External Secrets controller gets the role."
  type        = string
}

variable "namespace" {
  description = "Namespace of the External Secrets controller (the tooling stack installs it there)."
  type        = string
  default     = "external-secrets"
}

variable "service_account" {
  description = "Service account of the External Secrets controller."
  type        = string
  default     = "external-secrets"
}

variable "readable_secret_arns" {
  description = "The only secrets the controller may read (the app secrets and the RDS-managed master secret)."
  type        = list(string)

  validation {
    condition     = length(var.readable_secret_arns) > 0 && alltrue([for arn in var.readable_secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:", arn))])
    error_message = "readable_secret_arns must be a non-empty list of Secrets Manager ARNs."
  }
}

variable "kms_key_arn" {
  description = "KMS key the secrets are encrypted with."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
