variable "acme_email" {
  description = "Address Let's Encrypt writes to about expiring certificates."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.acme_email))
    error_message = "acme_email must be an email address."
  }
}

variable "acme_server" {
  description = "ACME directory: Let's Encrypt production, or its staging directory while you test (untrusted certificates, generous rate limits)."
  type        = string
  default     = "https://acme-v02.api.letsencrypt.org/directory"

  validation {
    condition     = contains(["https://acme-v02.api.letsencrypt.org/directory", "https://acme-staging-v02.api.letsencrypt.org/directory"], var.acme_server)
    error_message = "acme_server must be Let's Encrypt's production or staging directory."
  }
}

variable "ingress_class_name" {
  description = "IngressClass that answers the HTTP-01 challenges."
  type        = string
  default     = "traefik"
}

variable "aws_secrets_manager_region" {
  description = "AWS only: region of the Secrets Manager entries; creates the ClusterSecretStore aws-secrets-manager. null on other clouds."
  type        = string
  default     = null
}

variable "argocd_manifests_yaml" {
  description = "The AppProject and Application(s) of this environment, as rendered from kustomize/argocd/<cloud>/<env> (invoke tf.plan/apply pass it)."
  type        = string

  validation {
    condition     = length(trimspace(var.argocd_manifests_yaml)) > 0
    error_message = "argocd_manifests_yaml is empty: render it with `kubectl kustomize kustomize/argocd/<cloud>/<env>` (invoke tf.plan does)."
  }
}

variable "deployer_group" {
  description = "Kubernetes group of the release jobs (AWS: the EKS access entries' group); bound to a Role that reads and refreshes the Argo CD Applications. null binds nothing."
  type        = string
  default     = null
}

variable "argocd_namespace" {
  description = "Namespace of Argo CD (the cluster-tooling module's)."
  type        = string
  default     = "argocd"
}
