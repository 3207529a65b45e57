mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "111122223333" }
  }

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  region = "eu-central-1"
}

run "registry_only" {
  command = plan

  assert {
    condition     = module.ecr != null && length(aws_iam_role.github_deploy) == 0
    error_message = "Without github_repository there is no deploy role."
  }
}

run "github_deploy_role" {
  command = apply

  variables {
    github_repository = "acme/todo"
  }

  assert {
    condition     = jsondecode(aws_iam_role.github_deploy[0].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/todo:environment:stage", "repo:acme/todo:environment:prod"]
    error_message = "Only the repository's deploy jobs, in its stage and prod environments, may assume the role."
  }

  assert {
    condition     = !anytrue([for s in jsondecode(aws_iam_role_policy.github_deploy[0].policy).Statement : contains(flatten([s.Action]), "ecr:*") || s.Resource == "*" && s.Action != "ecr:GetAuthorizationToken"])
    error_message = "The deploy role gets no wildcard ECR rights; only the login call is unscoped."
  }
}
