output "releases" {
  description = "Helm releases and their chart versions."
  value       = module.tooling.releases
}

output "app_secret" {
  description = "Namespace/name of the Secret the app reads, and its keys."
  value = {
    name = "${kubernetes_secret_v1.todo.metadata[0].namespace}/${kubernetes_secret_v1.todo.metadata[0].name}"
    keys = sort(keys(kubernetes_secret_v1.todo.data))
  }
}

output "argocd_password_command" {
  description = "Prints Argo CD's initial admin password."
  value       = "kubectl -n ${module.tooling.argocd_namespace} get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d"
}
