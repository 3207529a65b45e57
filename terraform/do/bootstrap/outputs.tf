output "backend_hcl" {
  description = "What terraform/do/backend/{shared,stage,prod}.hcl hold."
  value       = "bucket    = \"${digitalocean_spaces_bucket.state.name}\"\nendpoints = { s3 = \"https://${var.spaces_region}.digitaloceanspaces.com\" }\n"
}

output "spaces_keys" {
  description = "SPACES_ACCESS_KEY_ID / SPACES_SECRET_ACCESS_KEY: plan's for infra-plan, apply's for infra-stage and infra-prod (`terraform output -json spaces_keys`)."
  value = {
    for role, key in digitalocean_spaces_key.terraform : role => {
      access_key_id     = key.access_key
      secret_access_key = key.secret_key
    }
  }
  sensitive = true
}
