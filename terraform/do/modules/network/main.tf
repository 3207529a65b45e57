# The environment's private network: the cluster's nodes and the managed
# databases talk over it; the databases have no public access at all.
resource "digitalocean_vpc" "this" {
  name        = var.name
  region      = var.region
  ip_range    = var.ip_range
  description = "${var.name}: DOKS nodes, PostgreSQL, Valkey"
}
