output "backend_hcl" {
  description = "What terraform/aws/backend/{shared,stage,prod}.hcl hold."
  value       = "bucket = \"${aws_s3_bucket.state.id}\"\nregion = \"${var.region}\"\n"
}

output "role_arns" {
  description = "AWS_TERRAFORM_ROLE_ARN of each GitHub environment (a variable of the environment)."
  value = merge([
    for role, envs in local.roles : { for env in envs : env => aws_iam_role.terraform[role].arn }
  ]...)
}
