# AWS access for the External Secrets controller through EKS Pod Identity:
# the pod's service account assumes this role, which can list secrets (to find
# them by tag) and read only the ones the app needs.

resource "aws_iam_role" "this" {
  name = "${var.name}-external-secrets"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = ["sts:AssumeRole", "sts:TagSession"]
      Principal = { Service = "pods.eks.amazonaws.com" }
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy" "read_app_secrets" {
  name = "read-app-secrets"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      # ListSecrets cannot be scoped to resources; it returns names and tags,
      # not values. BatchGetSecretValue is the bulk call ESO makes for `find`;
      # AWS still checks GetSecretValue on every secret it returns.
      {
        Sid      = "FindByTag"
        Effect   = "Allow"
        Action   = ["secretsmanager:ListSecrets", "secretsmanager:BatchGetSecretValue"]
        Resource = "*"
      },
      {
        Sid      = "ReadAppSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Resource = var.readable_secret_arns
      },
      {
        Sid      = "DecryptAppSecrets"
        Effect   = "Allow"
        Action   = "kms:Decrypt"
        Resource = var.kms_key_arn
      },
    ]
  })
}

resource "aws_eks_pod_identity_association" "this" {
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = var.service_account
  role_arn        = aws_iam_role.this.arn

  tags = var.tags
}
