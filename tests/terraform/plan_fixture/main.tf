# A configuration planned for real in tests/terraform/test_plan_report.py: hashicorp/aws from
# the provider mirror, with every credential and metadata check off, and no data source, so
# `terraform plan` runs without a cloud. Step 1 applies the terraform_data resources (local
# state); step 2 plans aws resources to add, one in-place change, one replacement and one
# destroy, which is what the plan report must show.

terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

provider "aws" {
  region                      = "eu-central-1"
  access_key                  = "not-a-real-key"
  secret_key                  = "not-a-real-secret"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

variable "step" {
  type        = number
  description = "1: what exists before the change; 2: the change under review."
}

locals {
  after = var.step == 2
}

resource "aws_s3_bucket" "logs" {
  count  = local.after ? 1 : 0
  bucket = "todo-plan-report-logs"
}

resource "aws_sqs_queue" "reminders" {
  count = local.after ? 1 : 0
  name  = "todo-plan-report-reminders"
}

resource "terraform_data" "settings" {
  input = local.after ? "v2" : "v1"
}

resource "terraform_data" "node_group" {
  triggers_replace = local.after ? "m6i.large" : "t3.medium"
}

resource "terraform_data" "legacy_queue" {
  count = local.after ? 0 : 1
  input = "retired by step 2"
}
