output "image_repository" {
  description = "Image name for the AWS overlays (kustomize edit set image todo=<this>:<tag>)."
  value       = module.ecr.repository_url
}

output "github_deploy_role_arn" {
  description = "Role for aws-actions/configure-aws-credentials (role-to-assume); null without github_repository."
  value       = one(aws_iam_role.github_deploy[*].arn)
}
