# DOKS: autoscaling node pool, patch upgrades in a maintenance window with
# surge nodes, the account's container registry wired into every namespace.

data "digitalocean_kubernetes_versions" "this" {
  version_prefix = var.kubernetes_version_prefix
}

resource "digitalocean_kubernetes_cluster" "this" {
  name     = var.name
  region   = var.region
  version  = data.digitalocean_kubernetes_versions.this.latest_version
  vpc_uuid = var.vpc_id
  ha       = var.high_availability
  tags     = var.tags

  auto_upgrade         = true
  surge_upgrade        = true
  registry_integration = true

  maintenance_policy {
    day        = var.maintenance_window.day
    start_time = var.maintenance_window.start_time
  }

  dynamic "control_plane_firewall" {
    for_each = length(var.api_allowed_addresses) > 0 ? [1] : []

    content {
      enabled           = true
      allowed_addresses = var.api_allowed_addresses
    }
  }

  node_pool {
    name       = "${var.name}-default"
    size       = var.node_size
    auto_scale = true
    min_nodes  = var.node_count.min
    max_nodes  = var.node_count.max
    tags       = var.tags
  }
}
