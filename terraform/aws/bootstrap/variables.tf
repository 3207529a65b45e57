variable "project" {
  description = "Name prefix of the roles (common.tfvars)."
  type        = string
}

variable "region" {
  description = "AWS region of the bucket (common.tfvars)."
  type        = string
}

variable "state_bucket" {
  description = "Name of the S3 bucket for every stack's state (globally unique); backend/*.hcl name it."
  type        = string
}

variable "github_repository" {
  description = "The repository whose workflows may assume the roles, as owner/name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "Use owner/name, e.g. your-org/todo."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC identity provider (false when the account already has one)."
  type        = bool
  default     = true
}

variable "state_versions_days" {
  description = "Days an overwritten state version is kept before it expires."
  type        = number
  default     = 90
}
