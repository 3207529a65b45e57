variable "name" {
  description = "Cluster name, e.g. todo-stage."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version, e.g. 1.33. Upgrade one minor at a time."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.(2[89]|3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.33 (a minor version EKS supports)."
  }
}

variable "vpc_id" {
  description = "VPC the cluster runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control-plane ENIs and the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API on the internet (restricted to public_access_cidrs). Terraform's tooling stack and kubectl need to reach it from outside the VPC."
  type        = bool
  default     = true
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public Kubernetes API endpoint (your office, VPN or CI egress)."
  type        = list(string)

  validation {
    condition     = alltrue([for cidr in var.public_access_cidrs : can(cidrhost(cidr, 0))])
    error_message = "public_access_cidrs must be valid IPv4 CIDRs."
  }
}

variable "kms_key_arn" {
  description = "KMS key for envelope encryption of Kubernetes Secrets and the control-plane log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep control-plane logs."
  type        = number
  default     = 365
}

variable "node_groups" {
  description = "Managed node groups by name: instance types, scaling bounds and ON_DEMAND or SPOT capacity."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    capacity_type  = optional(string, "ON_DEMAND")
    disk_size_gib  = optional(number, 40)
    labels         = optional(map(string), {})
  }))

  validation {
    condition = alltrue([
      for group in values(var.node_groups) :
      group.min_size >= 1 && group.min_size <= group.desired_size && group.desired_size <= group.max_size
    ])
    error_message = "Each node group needs 1 <= min_size <= desired_size <= max_size."
  }

  validation {
    condition     = alltrue([for group in values(var.node_groups) : contains(["ON_DEMAND", "SPOT"], group.capacity_type)])
    error_message = "capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "admin_principal_arns" {
  description = "IAM roles or users granted cluster-admin through EKS access entries (the CI deploy role, your SSO admin role)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/", arn))])
    error_message = "admin_principal_arns must be IAM role or user ARNs."
  }
}

variable "deployer_principal_arns" {
  description = "IAM roles that release jobs run as (the GitHub deploy role of the shared stack): access entries in deployer_group, nothing more."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.deployer_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "deployer_principal_arns must be IAM role ARNs."
  }
}

variable "deployer_group" {
  description = "Kubernetes group of the deployers; the cluster-config module's Role in argocd is bound to it."
  type        = string
  default     = "todo-deployers"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
