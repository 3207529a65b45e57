mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  name                 = "todo-test"
  vpc_id               = "vpc-0123456789abcdef0"
  subnet_ids           = ["subnet-a", "subnet-b", "subnet-c"]
  public_access_cidrs  = ["203.0.113.0/24"]
  kms_key_arn          = "arn:aws:kms:eu-central-1:111122223333:key/test"
  admin_principal_arns = ["arn:aws:iam::111122223333:role/ci-deploy"]
  node_groups = {
    default = { instance_types = ["t3.medium"], min_size = 2, max_size = 4, desired_size = 2 }
  }
}

run "cluster_hardening" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.access_config[0].authentication_mode == "API"
    error_message = "Access goes through EKS access entries (API mode), not the aws-auth ConfigMap."
  }

  assert {
    condition     = one(aws_eks_cluster.this.encryption_config[0].resources) == "secrets" && aws_eks_cluster.this.encryption_config[0].provider[0].key_arn == var.kms_key_arn
    error_message = "Kubernetes Secrets must be envelope-encrypted with KMS."
  }

  assert {
    condition     = length(aws_eks_cluster.this.enabled_cluster_log_types) == 5
    error_message = "All control-plane log types must be on."
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access && tolist(aws_eks_cluster.this.vpc_config[0].public_access_cidrs) == var.public_access_cidrs
    error_message = "The API must be reachable privately and publicly only from the allowed CIDRs."
  }

  assert {
    condition     = aws_launch_template.node["default"].metadata_options[0].http_tokens == "required" && aws_launch_template.node["default"].metadata_options[0].http_put_response_hop_limit == 1
    error_message = "Nodes must require IMDSv2 with a hop limit of 1."
  }

  assert {
    condition     = aws_launch_template.node["default"].block_device_mappings[0].ebs[0].encrypted == "true"
    error_message = "Node volumes must be encrypted."
  }

  assert {
    condition     = contains(keys(aws_eks_addon.core), "eks-pod-identity-agent") && contains(keys(aws_eks_addon.after_nodes), "coredns")
    error_message = "The Pod Identity agent and CoreDNS add-ons must be installed."
  }

  assert {
    condition     = jsondecode(aws_eks_addon.core["vpc-cni"].configuration_values).enableNetworkPolicy == "true"
    error_message = "The VPC CNI must enforce NetworkPolicies."
  }

  assert {
    condition     = aws_eks_access_policy_association.admin["arn:aws:iam::111122223333:role/ci-deploy"].access_scope[0].type == "cluster"
    error_message = "Admin principals get a cluster-scoped access policy."
  }
}

run "rejects_bad_scaling" {
  command = plan

  variables {
    node_groups = {
      default = { instance_types = ["t3.medium"], min_size = 3, max_size = 2, desired_size = 2 }
    }
  }

  expect_failures = [var.node_groups]
}
