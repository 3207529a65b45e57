# Infrastructure of one DigitalOcean environment: VPC, DOKS, managed
# PostgreSQL (with a PgBouncer pool) and managed Valkey, all on the private
# network, grouped in a project. The registry is account-wide (stacks/shared).

locals {
  name       = "${var.project}-${var.environment}"
  production = var.environment == "prod" # HA control plane, standby nodes, larger sizes
  tags       = [var.project, var.environment]
}

module "network" {
  source = "../../modules/network"

  name     = local.name
  region   = var.region
  ip_range = var.vpc_ip_range
}

module "kubernetes" {
  source = "../../modules/kubernetes"

  name                      = local.name
  region                    = var.region
  vpc_id                    = module.network.vpc_id
  kubernetes_version_prefix = var.kubernetes_version_prefix
  node_size                 = coalesce(var.node_size, local.production ? "s-4vcpu-8gb" : "s-2vcpu-4gb")
  node_count                = coalesce(var.node_count, local.production ? { min = 3, max = 8 } : { min = 2, max = 4 })
  high_availability         = local.production
  api_allowed_addresses     = var.api_allowed_addresses
  tags                      = local.tags
}

module "postgres" {
  source = "../../modules/postgres"

  name                  = "${local.name}-pg"
  region                = var.region
  vpc_id                = module.network.vpc_id
  kubernetes_cluster_id = module.kubernetes.cluster_id
  size                  = coalesce(var.postgres_size, local.production ? "db-s-2vcpu-4gb" : "db-s-1vcpu-2gb")
  node_count            = local.production ? 2 : 1
  # Session mode: one server connection per Django connection at the peak (autoscaler
  # maxima + rollout surge, beat, migrate: prod 46, stage 16); within the plan's 25 per GB
  # minus 3 (4 GB: 97, 2 GB: 47). tests/terraform/test_capacity.py recomputes both.
  pool_size = local.production ? 64 : 24
  # App Platform stage: the app-platform stack's app_id, once it exists.
  trusted_app_ids = var.trusted_app_ids
  tags            = local.tags
}

module "valkey" {
  source = "../../modules/valkey"

  name                  = "${local.name}-valkey"
  region                = var.region
  vpc_id                = module.network.vpc_id
  kubernetes_cluster_id = module.kubernetes.cluster_id
  trusted_app_ids       = var.trusted_app_ids
  size                  = coalesce(var.valkey_size, local.production ? "db-s-1vcpu-2gb" : "db-s-1vcpu-1gb")
  node_count            = local.production ? 2 : 1
  tags                  = local.tags
}

resource "digitalocean_project" "this" {
  name        = local.name
  description = "Django + Celery todo app, ${var.environment}"
  purpose     = "Web Application"
  environment = local.production ? "Production" : "Staging"
}

resource "digitalocean_project_resources" "this" {
  project = digitalocean_project.this.id
  resources = [
    module.kubernetes.cluster_urn,
    module.postgres.cluster_urn,
    module.valkey.cluster_urn,
  ]
}
