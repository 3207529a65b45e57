variable "repository_name" {
  description = "ECR repository holding the application image (one image, promoted from stage to prod by digest)."
  type        = string
  default     = "todo"

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.repository_name))
    error_message = "repository_name must be a valid ECR repository name (lowercase, digits, . _ - /)."
  }
}

variable "keep_tagged_images" {
  description = "How many tagged images to keep (older ones expire); releases are rolled back to recent tags."
  type        = number
  default     = 50

  validation {
    condition     = var.keep_tagged_images >= 5
    error_message = "Keep at least 5 tagged images so rollbacks have something to go back to."
  }
}

variable "untagged_expiry_days" {
  description = "Days after which untagged images (build leftovers) expire."
  type        = number
  default     = 7
}

variable "kms_key_arn" {
  description = "KMS key encrypting the images; null uses AES-256 managed by ECR."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
