mock_provider "aws" {}

variables {
  name_prefix = "todo/stage"
  database    = { host = "db.internal", port = 5432, name = "todo" }
  redis_url   = "rediss://todo:pw@cache.internal:6379/0"
  kms_key_arn = "arn:aws:kms:eu-central-1:111122223333:key/test"
  secret_tags = { "todo:external-secret" = "todo-secrets", "todo:environment" = "stage" }
}

run "secrets_and_documents" {
  command = apply

  assert {
    condition     = toset(values(output.secret_names)) == toset(["todo/stage/django", "todo/stage/valkey", "todo/stage/database", "todo/stage/email"])
    error_message = "The secret names must follow <prefix>/<role>."
  }

  assert {
    condition     = alltrue([for s in aws_secretsmanager_secret.generated : s.tags == var.secret_tags && s.kms_key_id == var.kms_key_arn]) && aws_secretsmanager_secret.email.tags == var.secret_tags
    error_message = "Every secret carries the find tags and is encrypted with the environment's key."
  }

  assert {
    condition     = keys(jsondecode(aws_secretsmanager_secret_version.generated["database"].secret_string)) == ["DATABASE_HOST", "DATABASE_NAME", "DATABASE_PORT"]
    error_message = "The database secret holds host, name and port (the password stays in the RDS-managed secret)."
  }

  assert {
    condition     = jsondecode(aws_secretsmanager_secret_version.generated["valkey"].secret_string).REDIS_URL == var.redis_url
    error_message = "The valkey secret holds REDIS_URL."
  }

  assert {
    condition     = length(jsondecode(aws_secretsmanager_secret_version.generated["django"].secret_string).DJANGO_SECRET_KEY) > 0
    error_message = "The django secret holds a generated DJANGO_SECRET_KEY."
  }

  assert {
    condition     = jsondecode(aws_secretsmanager_secret_version.email.secret_string).EMAIL_URL == "consolemail://"
    error_message = "EMAIL_URL starts as consolemail:// until the operator sets SMTP."
  }
}

run "rejects_plain_redis" {
  command = plan

  variables {
    redis_url = "redis://todo:pw@cache.internal:6379/0"
  }

  expect_failures = [var.redis_url]
}
