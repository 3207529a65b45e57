mock_provider "aws" {}

variables {
  name               = "todo-test"
  availability_zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
  kms_key_arn        = "arn:aws:kms:eu-central-1:111122223333:key/test"
  cluster_name       = "todo-test"
}

run "stage_single_nat" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_subnet.public) == 3 && length(aws_subnet.private) == 3
    error_message = "One public and one private subnet per AZ."
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1
    error_message = "Stage shares one NAT gateway."
  }

  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL" && aws_flow_log.this.log_destination_type == "cloud-watch-logs"
    error_message = "Flow logs must record all traffic to CloudWatch Logs."
  }

  assert {
    condition     = aws_cloudwatch_log_group.flow_logs.kms_key_id == var.kms_key_arn
    error_message = "Flow logs must be encrypted."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.private : s.tags["kubernetes.io/role/internal-elb"] == "1"]) && alltrue([for s in aws_subnet.public : s.tags["kubernetes.io/role/elb"] == "1"])
    error_message = "Subnets must carry the tags load balancers are placed by."
  }

  assert {
    condition     = length(distinct(concat([for s in aws_subnet.public : s.cidr_block], [for s in aws_subnet.private : s.cidr_block]))) == 6
    error_message = "Subnet CIDRs must not collide."
  }
}

run "prod_nat_per_az" {
  command = plan

  variables {
    single_nat_gateway = false
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 3
    error_message = "Prod runs a NAT gateway in every AZ."
  }
}

run "rejects_small_vpc" {
  command = plan

  variables {
    single_nat_gateway = true
    cidr_block         = "10.0.0.0/24"
  }

  expect_failures = [var.cidr_block]
}
