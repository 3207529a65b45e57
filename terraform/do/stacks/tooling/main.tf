# Cluster tooling on DOKS (Traefik behind a DigitalOcean load balancer,
# cert-manager, Argo CD, Reloader) and the Kubernetes Secret todo-secrets the
# app reads, built from the managed PostgreSQL pool and managed Valkey.

locals {
  names = {
    cluster  = "${var.project}-${var.environment}"
    postgres = "${var.project}-${var.environment}-pg"
    valkey   = "${var.project}-${var.environment}-valkey"
    pool     = "todo"
  }
}

module "tooling" {
  source = "../../../modules/cluster-tooling"

  ingress_service_annotations = {
    "service.beta.kubernetes.io/do-loadbalancer-name" = local.names.cluster
  }
  ingress_replicas    = var.environment == "prod" ? 3 : 2
  argocd_install_yaml = var.argocd_install_yaml
  monitoring          = var.monitoring
  keda                = var.keda
}

data "digitalocean_database_cluster" "postgres" {
  name = local.names.postgres
}

data "digitalocean_database_connection_pool" "app" {
  cluster_id = data.digitalocean_database_cluster.postgres.id
  name       = local.names.pool
}

data "digitalocean_database_cluster" "valkey" {
  name = local.names.valkey
}

# Generated once, kept in state (encrypted bucket); rotate with
# `terraform apply -replace=random_password.django_secret_key`.
resource "random_password" "django_secret_key" {
  length  = 64
  special = false
}

# Argo CD creates the namespace too (CreateNamespace=true); it exists first
# here because the Secret has to live in it before the first sync.
resource "kubernetes_namespace_v1" "todo" {
  metadata {
    name = "todo"
    labels = {
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

resource "kubernetes_secret_v1" "todo" {
  metadata {
    name      = "todo-secrets"
    namespace = kubernetes_namespace_v1.todo.metadata[0].name
    labels = {
      "app.kubernetes.io/name"    = "todo"
      "app.kubernetes.io/part-of" = "todo"
    }
  }

  data = {
    DJANGO_SECRET_KEY = random_password.django_secret_key.result
    # The pool's private URI: private network, sslmode=require.
    DATABASE_URL = data.digitalocean_database_connection_pool.app.private_uri
    # rediss:// (TLS) on the private network.
    REDIS_URL = data.digitalocean_database_cluster.valkey.private_uri
    EMAIL_URL = var.email_url
  }
}
