output "cluster_issuer" {
  description = "Name of the ClusterIssuer the Ingress annotations refer to."
  value       = kubernetes_manifest.cluster_issuer.manifest.metadata.name
}

output "cluster_secret_store" {
  description = "Name of the ClusterSecretStore, or null where External Secrets is not used."
  value       = one(kubernetes_manifest.cluster_secret_store[*].manifest.metadata.name)
}

output "argocd_objects" {
  description = "The Argo CD objects applied (kind/name)."
  value       = sort(keys(kubernetes_manifest.argocd))
}
