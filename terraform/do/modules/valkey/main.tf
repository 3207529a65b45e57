# Managed Valkey as Celery broker and Django cache: TLS only (rediss://),
# private network only, the DOKS cluster as its only trusted source, and
# `noeviction` so a full broker refuses writes instead of dropping tasks.

resource "digitalocean_database_cluster" "this" {
  name                 = var.name
  engine               = "valkey"
  version              = var.engine_version
  size                 = var.size
  region               = var.region
  node_count           = var.node_count
  private_network_uuid = var.vpc_id
  eviction_policy      = "noeviction"
  tags                 = var.tags

  maintenance_window {
    day  = var.maintenance_window.day
    hour = var.maintenance_window.hour
  }
}

resource "digitalocean_database_valkey_config" "this" {
  cluster_id = digitalocean_database_cluster.this.id
  ssl        = true
}

resource "digitalocean_database_firewall" "this" {
  cluster_id = digitalocean_database_cluster.this.id

  rule {
    type  = "k8s"
    value = var.kubernetes_cluster_id
  }

  # App Platform stage (stacks/app-platform): the app, once it exists.
  dynamic "rule" {
    for_each = toset(var.trusted_app_ids)
    content {
      type  = "app"
      value = rule.value
    }
  }
}
