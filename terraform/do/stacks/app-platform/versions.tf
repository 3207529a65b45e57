terraform {
  required_version = ">= 1.11"

  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = ">= 2.60, < 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }

  # Spaces is S3-compatible: partial configuration with bucket and endpoint from
  # terraform/do/backend.hcl, key from `invoke tf.plan`; the flags below turn off
  # the AWS-only checks. Locking: a lock file next to the state (use_lockfile).
  backend "s3" {
    region                      = "us-east-1"
    use_lockfile                = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    skip_s3_checksum            = true
  }
}

# DIGITALOCEAN_TOKEN in the environment authenticates.
provider "digitalocean" {}
