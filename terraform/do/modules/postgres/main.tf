# Managed PostgreSQL on the private network only, reachable solely from the
# DOKS cluster (firewall), with an application user, database and a PgBouncer
# pool. DigitalOcean takes daily backups with seven days of point-in-time
# recovery on every plan; standby nodes (node_count > 1) fail over on their own.

resource "digitalocean_database_cluster" "this" {
  name                 = var.name
  engine               = "pg"
  version              = var.engine_version
  size                 = var.size
  region               = var.region
  node_count           = var.node_count
  private_network_uuid = var.vpc_id
  tags                 = var.tags

  maintenance_window {
    day  = var.maintenance_window.day
    hour = var.maintenance_window.hour
  }
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

resource "digitalocean_database_db" "app" {
  cluster_id = digitalocean_database_cluster.this.id
  name       = var.database_name
}

resource "digitalocean_database_user" "app" {
  cluster_id = digitalocean_database_cluster.this.id
  name       = var.username
}

resource "digitalocean_database_connection_pool" "app" {
  cluster_id = digitalocean_database_cluster.this.id
  name       = var.database_name
  mode       = var.pool_mode
  size       = var.pool_size
  db_name    = digitalocean_database_db.app.name
  user       = digitalocean_database_user.app.name

  lifecycle {
    # DigitalOcean gives 25 connections per GB of RAM and keeps 3 (its pool documentation).
    precondition {
      condition     = var.pool_size <= 25 * tonumber(regex("(\\d+)gb$", var.size)[0]) - 3
      error_message = "pool_size ${var.pool_size} exceeds what a ${var.size} cluster allows (25 per GB of RAM, minus 3): pick a larger size or a smaller pool."
    }
  }
}
