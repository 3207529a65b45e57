# Common to every stack of terraform/do, each declaring them alike: values from
# terraform/do/common.tfvars, environment from `invoke tf.plan --env` (terraform/README.md).
variable "project" {
  description = "Project name. Resources are named <project>-<environment>: that is how each stack finds what the ones before it made."
  type        = string
  default     = "todo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment: App Platform is the stage option (`invoke tf.plan --env stage --stack app-platform`)."
  type        = string

  validation {
    condition     = var.environment == "stage"
    error_message = "The app-platform stack serves stage; prod runs on DOKS (stacks tooling, apps)."
  }
}

variable "region" {
  description = "App Platform region slug, e.g. fra (the databases' region: fra1)."
  type        = string
}

variable "domain" {
  description = "Public host of the app, e.g. stage.todo.example.com (App Platform issues its certificate)."
  type        = string
}

variable "email_url" {
  description = "EMAIL_URL of the app (smtp+tls://user:pass@host:587). A secret: set TF_VAR_email_url, never a tfvars file. Defaults to logging mail instead of sending it."
  type        = string
  default     = "consolemail://"
  sensitive   = true

  validation {
    condition     = can(regex("^(consolemail|smtp|smtps|smtp\\+tls|smtp\\+ssl)://", var.email_url))
    error_message = "email_url must be consolemail:// or an smtp://, smtp+tls:// or smtp+ssl:// URL."
  }
}

variable "image_repository" {
  description = "Repository in the account's DOCR registry (the registry itself is implied), e.g. todo."
  type        = string
  default     = "todo"
}

variable "image_tag" {
  description = "Tag of the first image (a commit SHA pushed by `invoke image.push`); later releases change it with `invoke deploy --env stage --cloud do`."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{40}$", var.image_tag))
    error_message = "image_tag must be the commit SHA an image was pushed with (invoke image.push)."
  }
}

variable "instance_size" {
  description = "Instance size of every component."
  type        = string
  default     = "apps-s-1vcpu-1gb"
}

variable "web_instances" {
  description = "web instances (the stage overlay's HPA minimum)."
  type        = number
  default     = 1
}

variable "worker_instances" {
  description = "worker instances."
  type        = number
  default     = 1
}

variable "otlp_endpoint" {
  description = "OTLP/HTTP endpoint of your trace collector (OTEL_EXPORTER_OTLP_ENDPOINT); empty turns tracing off."
  type        = string
  default     = ""
}
