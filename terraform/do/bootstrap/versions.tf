terraform {
  required_version = ">= 1.11"

  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = ">= 2.60, < 3.0"
    }
  }
  # No backend: local state, see main.tf.
}

# DIGITALOCEAN_TOKEN, and SPACES_ACCESS_KEY_ID / SPACES_SECRET_ACCESS_KEY of a key made by
# hand in the control panel (full access), authenticate this one run.
provider "digitalocean" {}
