output "cluster_issuer" {
  description = "ClusterIssuer named by the overlays' Ingress annotation."
  value       = module.config.cluster_issuer
}

output "argocd_objects" {
  description = "Argo CD objects applied."
  value       = module.config.argocd_objects
}
