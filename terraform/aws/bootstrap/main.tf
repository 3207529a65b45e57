# Once per AWS account, before any stack (`invoke tf.bootstrap --cloud aws`): the bucket every
# stack keeps its state in, and the roles GitHub Actions assumes through OIDC, one that can
# only read (pull request plans, drift) and one that applies (behind the infra-stage and
# infra-prod environments' reviewers). Its own state is local (terraform.tfstate here,
# git-ignored): it is what the remote state needs, so it cannot live there.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  github_oidc = "token.actions.githubusercontent.com"
  aws_iam     = "arn:${data.aws_partition.current.partition}:iam"
  # GitHub environment -> the role its jobs assume (the token's subject names the environment).
  roles = {
    plan  = ["infra-plan"]
    apply = ["infra-stage", "infra-prod"]
  }
  state_access = {
    plan  = ["s3:GetObject"]
    apply = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] # the lock file is an object too
  }
}

resource "aws_s3_bucket" "state" {
  bucket = var.state_bucket
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled" # every earlier state stays restorable
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "old-states"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.state_versions_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.state]
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = "https://${local.github_oidc}"
  client_id_list = ["sts.amazonaws.com"]
}

resource "aws_iam_role" "terraform" {
  for_each = local.roles

  name        = "${var.project}-terraform-${each.key}"
  description = "Terraform ${each.key} from GitHub Actions (${join(", ", each.value)}) of ${var.github_repository}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRoleWithWebIdentity"
      Principal = { Federated = "${local.aws_iam}::${data.aws_caller_identity.current.account_id}:oidc-provider/${local.github_oidc}" }
      Condition = {
        StringEquals = {
          "${local.github_oidc}:aud" = "sts.amazonaws.com"
          "${local.github_oidc}:sub" = [for env in each.value : "repo:${var.github_repository}:environment:${env}"]
        }
      }
    }]
  })

  depends_on = [aws_iam_openid_connect_provider.github]
}

# plan: read everything (AWS's ReadOnlyAccess); apply: create and change everything the stacks
# hold (EKS, IAM roles, KMS keys, ...). Narrow the apply role in your fork if you can.
resource "aws_iam_role_policy_attachment" "terraform" {
  for_each = { plan = "ReadOnlyAccess", apply = "AdministratorAccess" }

  role       = aws_iam_role.terraform[each.key].name
  policy_arn = "${local.aws_iam}::aws:policy/${each.value}"
}

resource "aws_iam_role_policy" "state" {
  for_each = local.state_access

  name = "terraform-state"
  role = aws_iam_role.terraform[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = "s3:ListBucket", Resource = aws_s3_bucket.state.arn },
      { Effect = "Allow", Action = each.value, Resource = "${aws_s3_bucket.state.arn}/*" },
    ]
  })
}
