output "repository_url" {
  description = "Image name to push to and to set in the overlays (<account>.dkr.ecr.<region>.amazonaws.com/todo)."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "ARN of the repository (for push policies)."
  value       = aws_ecr_repository.this.arn
}
