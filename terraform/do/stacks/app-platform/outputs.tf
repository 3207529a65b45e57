output "app_id" {
  description = "The app's id: infra's trusted_app_ids lists it; `doctl apps get` reads it."
  value       = digitalocean_app.this.id
}

output "default_ingress" {
  description = "The app's own URL; point the domain's CNAME at its host."
  value       = digitalocean_app.this.default_ingress
}
