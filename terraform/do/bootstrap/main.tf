# Once per DigitalOcean account, before any stack (`invoke tf.bootstrap --cloud do`): the Space
# every stack keeps its state in, and two Spaces keys limited to it, one that can only read
# (pull request plans, drift: the infra-plan environment) and one that writes (applies:
# infra-stage and infra-prod). DigitalOcean has no OIDC for GitHub: its API tokens are made in
# the control panel (terraform/README.md). Its own state is local (terraform.tfstate here,
# git-ignored), and holds the keys' secrets: keep it on the machine that ran it, or delete it
# once the secrets are in GitHub (the keys can be revoked and made again).

resource "digitalocean_spaces_bucket" "state" {
  name   = var.state_bucket
  region = var.spaces_region
  acl    = "private"

  versioning {
    enabled = true # every earlier state stays restorable
  }

  lifecycle_rule {
    enabled = true

    noncurrent_version_expiration {
      days = var.state_versions_days
    }
  }
}

resource "digitalocean_spaces_key" "terraform" {
  for_each = { plan = "read", apply = "readwrite" }

  name = "${var.project}-terraform-${each.key}"

  grant {
    bucket     = digitalocean_spaces_bucket.state.name
    permission = each.value
  }
}
