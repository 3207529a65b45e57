output "namespaces" {
  description = "Namespace of each tool."
  value       = local.namespaces
}

output "ingress_class_name" {
  description = "IngressClass the overlays use."
  value       = local.ingress_class_name
}

output "argocd_namespace" {
  description = "Namespace of Argo CD (where the AppProject and Application live)."
  value       = kubernetes_namespace_v1.argocd.metadata[0].name
}

output "external_secrets_installed" {
  description = "Whether External Secrets Operator is installed."
  value       = length(helm_release.external_secrets) == 1
}

output "releases" {
  description = "Installed chart versions by release name."
  value = merge(
    {
      (helm_release.traefik.name)      = helm_release.traefik.version
      (helm_release.cert_manager.name) = helm_release.cert_manager.version
      (helm_release.reloader.name)     = helm_release.reloader.version
    },
    { for release in helm_release.external_secrets : release.name => release.version },
    { for release in helm_release.kube_prometheus_stack : release.name => release.version },
    { for release in helm_release.keda : release.name => release.version },
  )
}
