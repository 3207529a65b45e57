# Common to every stack of terraform/aws, each declaring them alike: values from
# terraform/aws/common.tfvars, environment from `invoke tf.plan --env` (terraform/README.md).
variable "project" {
  description = "Project name. Resources are named <project>-<environment>: that is how each stack finds what the ones before it made."
  type        = string
  default     = "todo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of every stack, e.g. eu-central-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like eu-central-1."
  }
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose Actions may push images through OIDC; null creates no deploy role."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like owner/name."
  }
}

variable "github_deploy_environments" {
  description = "GitHub environments whose deploy jobs may assume the deploy role (.github/workflows/deploy.yml)."
  type        = list(string)
  default     = ["stage", "prod"]

  validation {
    condition     = length(var.github_deploy_environments) > 0 && alltrue([for env in var.github_deploy_environments : can(regex("^[A-Za-z0-9_.-]+$", env))])
    error_message = "List at least one GitHub environment name (letters, digits, '_', '.', '-')."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC identity provider (false when the account already has one)."
  type        = bool
  default     = true
}
