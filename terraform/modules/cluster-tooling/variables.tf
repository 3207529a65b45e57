variable "ingress_service_annotations" {
  description = "Annotations on Traefik's LoadBalancer Service: how the cloud builds the load balancer (NLB on AWS, a named DO load balancer)."
  type        = map(string)
  default     = {}
}

variable "ingress_replicas" {
  description = "Traefik replicas (2 or more keeps ingress up during node drains)."
  type        = number
  default     = 2

  validation {
    condition     = var.ingress_replicas >= 1 && var.ingress_replicas <= 10
    error_message = "ingress_replicas must be between 1 and 10."
  }
}

variable "external_secrets" {
  description = "Install External Secrets Operator (AWS: todo-secrets comes from Secrets Manager). service_account must match the cloud identity binding."
  type = object({
    enabled         = bool
    service_account = optional(string, "external-secrets")
  })
  default = { enabled = false }
}

variable "chart_versions" {
  description = "Pinned Helm chart versions; bump deliberately, one at a time."
  type = object({
    traefik          = optional(string, "39.0.9")
    cert_manager     = optional(string, "v1.19.2")
    external_secrets = optional(string, "2.3.0")
    reloader         = optional(string, "2.2.16")
    # Opt-in (monitoring, keda). kube-prometheus-stack 88.3.0 ships Prometheus Operator
    # v0.93.0; the KEDA chart's version is KEDA's.
    kube_prometheus_stack = optional(string, "88.3.0")
    keda                  = optional(string, "2.20.2")
  })
  default = {}
}

variable "argocd_install_yaml" {
  description = "Argo CD's upstream install manifest at the release versions.yaml pins (manifests.argo-cd; argo-cd-ha for prod); invoke tf.plan/apply download it, sha256 checked, and pass it."
  type        = string

  validation {
    condition     = strcontains(var.argocd_install_yaml, "kind: CustomResourceDefinition")
    error_message = "argocd_install_yaml is not Argo CD's install manifest: run the tooling stack through invoke tf.plan/apply."
  }
}

variable "monitoring" {
  description = "Install kube-prometheus-stack (Prometheus Operator, Prometheus, Grafana) in namespace monitoring, for kustomize/components/monitoring."
  type        = bool
  default     = false
}

variable "keda" {
  description = "Install KEDA, for kustomize/components/keda-worker (which also needs monitoring, or another Prometheus)."
  type        = bool
  default     = false
}
