variable "name" {
  description = "VPC name, e.g. todo-stage."
  type        = string
}

variable "region" {
  description = "DigitalOcean region slug, e.g. fra1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{3}[0-9]$", var.region))
    error_message = "region must be a DigitalOcean region slug such as fra1, ams3 or nyc3."
  }
}

variable "ip_range" {
  description = "Private IPv4 range of the VPC (nodes, databases). Must not overlap the cluster's pod and service subnets or other VPCs."
  type        = string
  default     = "10.30.0.0/20"

  validation {
    condition     = can(cidrhost(var.ip_range, 0)) && tonumber(split("/", var.ip_range)[1]) >= 16 && tonumber(split("/", var.ip_range)[1]) <= 24
    error_message = "ip_range must be a private IPv4 CIDR between /16 and /24."
  }
}
