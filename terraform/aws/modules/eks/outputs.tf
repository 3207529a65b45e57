output "cluster_name" {
  description = "EKS cluster name (the tooling stack looks the cluster up by it)."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "EKS cluster ARN."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the Kubernetes API."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_security_group_id" {
  description = "Security group EKS attaches to the control plane and managed nodes; data stores admit it."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "node_role_arn" {
  description = "IAM role of the managed nodes."
  value       = aws_iam_role.node.arn
}

output "addons" {
  description = "Names of the EKS add-ons installed."
  value       = sort(concat(keys(aws_eks_addon.core), keys(aws_eks_addon.after_nodes)))
}

output "deployer_groups" {
  description = "Kubernetes groups of each deployer's access entry."
  value       = { for arn, entry in aws_eks_access_entry.deployer : arn => tolist(entry.kubernetes_groups) }
}
