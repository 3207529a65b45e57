# DigitalOcean stage on App Platform instead of DOKS: the same DOCR image and the same
# processes and settings contract as kustomize/overlays/do/stage (tests/terraform/
# test_app_platform.py checks the parity), on the managed PostgreSQL pool and Valkey that the
# infra stack creates. Secrets are encrypted app env (type SECRET). Attaching the clusters as
# `database` components makes App Platform add the app to their trusted sources; list the
# app's id in infra's `trusted_app_ids` too (terraform output app_id), or the next infra
# apply, whose database firewalls admit only what they list, takes it out again.
# A release (`invoke deploy --env stage --cloud do` with release.do_stage: app-platform in
# invoke.yaml) sets each component's image tag and digest with `doctl apps update`, so
# Terraform leaves those two alone.

locals {
  names = {
    app      = "${var.project}-${var.environment}"
    postgres = "${var.project}-${var.environment}-pg"
    valkey   = "${var.project}-${var.environment}-valkey"
    pool     = "todo"
  }
  # kustomize/base's todo-config and overlays/do/stage's values, one setting each.
  settings = {
    DJANGO_DEBUG                = "false"
    DJANGO_LOG_LEVEL            = "INFO"
    DJANGO_LOG_FORMAT           = "json"
    DJANGO_TIME_ZONE            = "UTC"
    DJANGO_SECURE_SSL_REDIRECT  = "true"
    DATABASE_CONN_MAX_AGE       = "60"
    CELERY_HEARTBEAT_DIR        = "/tmp"
    GUNICORN_GRACEFUL_TIMEOUT   = "25"
    DJANGO_ALLOWED_HOSTS        = var.domain
    DJANGO_CSRF_TRUSTED_ORIGINS = "https://${var.domain}"
    DJANGO_SITE_URL             = "https://${var.domain}"
    # App Platform's router is the one proxy in front of web, as Traefik is on DOKS.
    DJANGO_TRUSTED_PROXY_COUNT = "1"
    # Traces go to your collector here (DOKS has one in the cluster); empty: tracing off.
    OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint
    OTEL_RESOURCE_ATTRIBUTES    = "deployment.environment.name=${var.environment}"
  }
  # The Secret todo-secrets of docs/contract.md, as encrypted env.
  secrets = {
    DJANGO_SECRET_KEY = random_password.django_secret_key.result
    # The pool's public URI (sslmode=require); the trusted sources admit only this app.
    DATABASE_URL = data.digitalocean_database_connection_pool.app.uri
    REDIS_URL    = data.digitalocean_database_cluster.valkey.uri # rediss:// (TLS)
    EMAIL_URL    = var.email_url
  }
  image = {
    registry_type = "DOCR"
    repository    = var.image_repository
    tag           = var.image_tag
  }
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

# Rotate with `terraform apply -replace=random_password.django_secret_key`.
resource "random_password" "django_secret_key" {
  length  = 64
  special = false
}

resource "digitalocean_app" "this" {
  spec {
    name   = local.names.app
    region = var.region

    domain {
      name = var.domain
      type = "PRIMARY"
    }

    alert {
      rule = "DEPLOYMENT_FAILED"
    }

    dynamic "env" {
      for_each = local.settings
      content {
        key   = env.key
        value = env.value
        scope = "RUN_TIME"
        type  = "GENERAL"
      }
    }

    dynamic "env" {
      for_each = local.secrets
      content {
        key   = env.key
        value = env.value
        scope = "RUN_TIME"
        type  = "SECRET"
      }
    }

    service {
      name               = "web"
      run_command        = "/app/bin/web"
      http_port          = 8000
      instance_count     = var.web_instances
      instance_size_slug = var.instance_size

      image {
        registry_type = local.image.registry_type
        repository    = local.image.repository
        tag           = local.image.tag
      }

      # 1 CPU + 1 sync workers, as the overlays size gunicorn to a 1-CPU limit.
      env {
        key   = "WEB_CONCURRENCY"
        value = "2"
        scope = "RUN_TIME"
      }

      health_check {
        http_path             = "/readyz"
        initial_delay_seconds = 10
        period_seconds        = 10
      }
    }

    worker {
      name               = "worker"
      run_command        = "/app/bin/worker"
      instance_count     = var.worker_instances
      instance_size_slug = var.instance_size

      image {
        registry_type = local.image.registry_type
        repository    = local.image.repository
        tag           = local.image.tag
      }

      env {
        key   = "CELERY_WORKER_CONCURRENCY"
        value = "2"
        scope = "RUN_TIME"
      }
    }

    # The one scheduler: exactly one instance.
    worker {
      name               = "beat"
      run_command        = "/app/bin/beat"
      instance_count     = 1
      instance_size_slug = var.instance_size

      image {
        registry_type = local.image.registry_type
        repository    = local.image.repository
        tag           = local.image.tag
      }
    }

    # Before each deployment goes live, as the migrate hook runs before the sync on DOKS.
    job {
      name               = "migrate"
      kind               = "PRE_DEPLOY"
      run_command        = "/app/bin/migrate"
      instance_size_slug = var.instance_size

      image {
        registry_type = local.image.registry_type
        repository    = local.image.repository
        tag           = local.image.tag
      }
    }

    database {
      name         = "postgres"
      engine       = "PG"
      production   = true
      cluster_name = data.digitalocean_database_cluster.postgres.name
    }

    database {
      name         = "valkey"
      engine       = "VALKEY"
      production   = true
      cluster_name = data.digitalocean_database_cluster.valkey.name
    }
  }

  lifecycle {
    # Releases move these (doctl apps update); Terraform owns everything else.
    ignore_changes = [
      spec[0].service[0].image[0].tag,
      spec[0].service[0].image[0].digest,
      spec[0].worker[0].image[0].tag,
      spec[0].worker[0].image[0].digest,
      spec[0].worker[1].image[0].tag,
      spec[0].worker[1].image[0].digest,
      spec[0].job[0].image[0].tag,
      spec[0].job[0].image[0].digest,
    ]
  }
}
