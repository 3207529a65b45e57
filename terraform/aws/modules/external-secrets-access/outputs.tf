output "role_arn" {
  description = "IAM role the External Secrets controller assumes."
  value       = aws_iam_role.this.arn
}

output "namespace" {
  description = "Namespace the role is bound to."
  value       = aws_eks_pod_identity_association.this.namespace
}

output "service_account" {
  description = "Service account the role is bound to."
  value       = aws_eks_pod_identity_association.this.service_account
}

output "policy_json" {
  description = "The controller's permissions (for review and tests)."
  value       = aws_iam_role_policy.read_app_secrets.policy
}
