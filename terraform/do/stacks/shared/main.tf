# The account's one container registry, shared by stage and prod: prod runs
# the very digest stage ran. The clusters pull from it through
# registry_integration (a pull secret DigitalOcean keeps in every namespace).
resource "digitalocean_container_registry" "this" {
  name                   = var.registry_name
  subscription_tier_slug = var.registry_tier
  region                 = var.region
}
