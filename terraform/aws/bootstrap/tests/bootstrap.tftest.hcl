# The bootstrap's guarantees, with a mocked provider: the state bucket keeps versions, is
# private and TLS-only; each role trusts only its GitHub environments of this repository.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
}

variables {
  project           = "todo"
  region            = "eu-central-1"
  state_bucket      = "example-todo-terraform-state"
  github_repository = "example/todo"
}

run "state_bucket" {
  command = apply # a mocked apply: the ARNs in the policies are known then

  assert {
    condition     = aws_s3_bucket_versioning.state.versioning_configuration[0].status == "Enabled"
    error_message = "The state bucket must keep every version."
  }
  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.state.block_public_acls,
      aws_s3_bucket_public_access_block.state.block_public_policy,
      aws_s3_bucket_public_access_block.state.ignore_public_acls,
      aws_s3_bucket_public_access_block.state.restrict_public_buckets,
    ])
    error_message = "The state bucket holds secrets: no public access."
  }
  assert {
    condition     = jsondecode(aws_s3_bucket_policy.state.policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false"
    error_message = "Requests without TLS must be denied."
  }
}

run "roles_trust_only_their_environments" {
  command = apply # a mocked apply: the ARNs in the policies are known then

  assert {
    condition = jsondecode(aws_iam_role.terraform["plan"].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == [
      "repo:example/todo:environment:infra-plan",
    ]
    error_message = "Only infra-plan jobs may assume the read-only role."
  }
  assert {
    condition = jsondecode(aws_iam_role.terraform["apply"].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == [
      "repo:example/todo:environment:infra-stage",
      "repo:example/todo:environment:infra-prod",
    ]
    error_message = "Only jobs of the reviewed environments may assume the apply role."
  }
  assert {
    condition     = endswith(aws_iam_role_policy_attachment.terraform["plan"].policy_arn, ":policy/ReadOnlyAccess")
    error_message = "The plan role must only read."
  }
  assert {
    condition     = !contains(jsondecode(aws_iam_role_policy.state["plan"].policy).Statement[1].Action, "s3:PutObject")
    error_message = "The plan role must not write state (plans run with -lock=false)."
  }
}

run "existing_oidc_provider" {
  command = apply # a mocked apply: the ARNs in the policies are known then

  variables {
    create_github_oidc_provider = false
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0
    error_message = "An account that has the provider must not get a second one."
  }
}
