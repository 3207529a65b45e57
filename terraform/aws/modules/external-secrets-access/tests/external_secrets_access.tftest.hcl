mock_provider "aws" {}

variables {
  name                 = "todo-test"
  cluster_name         = "todo-test"
  readable_secret_arns = ["arn:aws:secretsmanager:eu-central-1:111122223333:secret:todo/stage/django-AbCdEf"]
  kms_key_arn          = "arn:aws:kms:eu-central-1:111122223333:key/test"
}

run "pod_identity_binding" {
  command = plan

  assert {
    condition     = aws_eks_pod_identity_association.this.namespace == "external-secrets" && aws_eks_pod_identity_association.this.service_account == "external-secrets"
    error_message = "The role is bound to the External Secrets controller's service account."
  }

  assert {
    condition     = jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Principal.Service == "pods.eks.amazonaws.com"
    error_message = "Only EKS Pod Identity may assume the role."
  }

  assert {
    condition = alltrue([
      for statement in jsondecode(aws_iam_role_policy.read_app_secrets.policy).Statement :
      toset(flatten([statement.Resource])) == toset(var.readable_secret_arns) if contains(flatten([statement.Action]), "secretsmanager:GetSecretValue")
    ])
    error_message = "GetSecretValue is limited to the app's secrets."
  }

  assert {
    condition = alltrue([
      for statement in jsondecode(aws_iam_role_policy.read_app_secrets.policy).Statement :
      !anytrue([for action in flatten([statement.Action]) : endswith(action, ":*") || startswith(action, "secretsmanager:Put") || startswith(action, "secretsmanager:Delete")])
    ])
    error_message = "The controller only reads: no wildcard actions, no writes."
  }
}
