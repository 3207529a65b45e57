# Account-wide pieces every environment shares: the one image repository
# (stage and prod run the same digest; prod promotes what stage ran) and the
# role GitHub Actions assumes through OIDC to push there (no long-lived keys).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

module "ecr" {
  source = "../../modules/ecr"

  repository_name = var.project
}

locals {
  github_oidc_url = "token.actions.githubusercontent.com"
  deploy_role     = var.github_repository != null
}

resource "aws_iam_openid_connect_provider" "github" {
  count = local.deploy_role && var.create_github_oidc_provider ? 1 : 0

  url            = "https://${local.github_oidc_url}"
  client_id_list = ["sts.amazonaws.com"]
}

resource "aws_iam_role" "github_deploy" {
  count = local.deploy_role ? 1 : 0

  name = "${var.project}-github-deploy"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = "sts:AssumeRoleWithWebIdentity"
      Principal = {
        Federated = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/${local.github_oidc_url}"
      }
      Condition = {
        # Deploy jobs run in a GitHub environment, so their token's subject names it
        # (repo:OWNER/REPO:environment:NAME), not the branch; prod's protection rules apply.
        StringEquals = {
          "${local.github_oidc_url}:aud" = "sts.amazonaws.com"
          "${local.github_oidc_url}:sub" = [for env in var.github_deploy_environments : "repo:${var.github_repository}:environment:${env}"]
        }
      }
    }]
  })

  depends_on = [aws_iam_openid_connect_provider.github]
}

resource "aws_iam_role_policy" "github_deploy" {
  count = local.deploy_role ? 1 : 0

  name = "push-image"
  role = aws_iam_role.github_deploy[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Login"
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken"
        Resource = "*"
      },
      {
        Sid    = "PushAndPull"
        Effect = "Allow"
        Action = [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:CompleteLayerUpload",
          "ecr:DescribeImages",
          "ecr:GetDownloadUrlForLayer",
          "ecr:InitiateLayerUpload",
          "ecr:PutImage",
          "ecr:UploadLayerPart",
        ]
        Resource = module.ecr.repository_arn
      },
      {
        Sid      = "FindClusters"
        Effect   = "Allow"
        Action   = "eks:DescribeCluster"
        Resource = "arn:${data.aws_partition.current.partition}:eks:${var.region}:${data.aws_caller_identity.current.account_id}:cluster/${var.project}-*"
      },
    ]
  })
}
