variable "project" {
  description = "Name prefix of the Spaces keys (common.tfvars)."
  type        = string
}

variable "state_bucket" {
  description = "Name of the Space for every stack's state (unique in its region); backend/*.hcl name it."
  type        = string
}

variable "spaces_region" {
  description = "Spaces region of the state bucket, e.g. fra1; backend/*.hcl name its endpoint."
  type        = string
}

variable "state_versions_days" {
  description = "Days an overwritten state version is kept before it expires."
  type        = number
  default     = 90
}
