output "image_repository" {
  description = "Image name for the DigitalOcean overlays (kustomize edit set image todo=<this>:<tag>)."
  value       = "${digitalocean_container_registry.this.server_url}/${digitalocean_container_registry.this.name}/${var.project}"
}
