output "releases" {
  description = "Helm releases and their chart versions."
  value       = module.tooling.releases
}

output "namespaces" {
  description = "Namespace of each tool."
  value       = module.tooling.namespaces
}

output "argocd_password_command" {
  description = "Prints Argo CD's initial admin password."
  value       = "kubectl -n ${module.tooling.argocd_namespace} get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d"
}
