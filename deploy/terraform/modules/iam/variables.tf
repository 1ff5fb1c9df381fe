variable "name" {
  description = "Prefix of the role names, \"<app>-<env>\" (e.g. \"rnr-dev\" gives rnr-dev-lambda-producer-role)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "input_bucket_name" {
  description = "INPUT_BUCKET: the bucket holding the hydrofabric."
  type        = string
  nullable    = false
}

variable "output_bucket_name" {
  description = "OUTPUT_BUCKET: the bucket of the forecasts and the post-processed table."
  type        = string
  nullable    = false
}

variable "hydrofabric_location" {
  description = "HYDROFABRIC_LOCATION: a .gpkg key or a prefix of <layer>.parquet objects in the input bucket; the worker and the post-processor may read it and nothing else of that bucket."
  type        = string
  nullable    = false

  validation {
    condition     = length(trim(var.hydrofabric_location, "/")) > 0 && !strcontains(var.hydrofabric_location, "*")
    error_message = "hydrofabric_location must be a non-empty key or prefix without wildcards."
  }
}

variable "output_prefix" {
  description = "OUTPUT_PREFIX: the worker writes and the post-processor reads under it."
  type        = string
  nullable    = false

  validation {
    condition     = length(trim(var.output_prefix, "/")) > 0 && !strcontains(var.output_prefix, "*")
    error_message = "output_prefix must be a non-empty prefix without wildcards."
  }
}

variable "postproc_prefix" {
  description = "POSTPROC_PREFIX: where the post-processor writes its table in the output bucket."
  type        = string
  nullable    = false

  validation {
    condition     = length(trim(var.postproc_prefix, "/")) > 0 && !strcontains(var.postproc_prefix, "*")
    error_message = "postproc_prefix must be a non-empty prefix without wildcards."
  }
}

variable "bucket_kms_key_arns" {
  description = "KMS keys that encrypt the buckets' objects (the stack key for created buckets; the owner's keys for existing SSE-KMS buckets; empty for SSE-S3)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "kms_key_arn" {
  description = "The stack's KMS key (secrets, Lambda environments)."
  type        = string
  nullable    = false
}

variable "broker_secret_arn" {
  description = "RABBITMQ_SECRET_ARN: the only secret the services read."
  type        = string
  nullable    = false
}

variable "worker_secret_arns" {
  description = "Secrets injected into the worker container by ECS (task definition secrets); the execution role may read these and no others."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "cluster_name" {
  description = "Name of the ECS cluster of the worker."
  type        = string
  nullable    = false
}

variable "worker_service_name" {
  description = "Name of the worker's ECS service: the only service the autoscaler may describe and update."
  type        = string
  nullable    = false
}

variable "worker_log_group_name" {
  description = "CloudWatch log group of the worker containers."
  type        = string
  nullable    = false
}

variable "function_names" {
  description = "Names of the three Lambdas, keyed producer, autoscaler and postproc."
  type        = map(string)
  nullable    = false

  validation {
    condition     = toset(keys(var.function_names)) == toset(["producer", "autoscaler", "postproc"])
    error_message = "function_names must have exactly the keys producer, autoscaler and postproc."
  }
}

variable "dead_letter_queue_name" {
  description = "Name of the SQS queue receiving failed scheduled invocations (scheduler and Lambda async failures)."
  type        = string
  nullable    = false
}

variable "metric_namespace" {
  description = "The only CloudWatch namespace the autoscaler may publish metrics to."
  type        = string
  default     = "rnr-pipeline"
  nullable    = false
}

variable "ecr_repository_names" {
  description = "ECR repositories keyed by image (worker, producer, autoscaler, postproc): the execution role pulls the worker's, the CI role pushes to all."
  type        = map(string)
  nullable    = false

  validation {
    condition     = contains(keys(var.ecr_repository_names), "worker")
    error_message = "ecr_repository_names must include the worker repository."
  }
}

variable "managed_secret_arns" {
  description = "Secrets whose values Terraform manages (broker credentials, cache token): the CI plan role reads them to refresh the state."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "github_repository" {
  description = "\"owner/name\" of the GitHub repository whose workflows push images (main branch) and plan Terraform (pull requests) through OIDC; null creates no CI roles."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like owner/name."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's existing GitHub OIDC provider (token.actions.githubusercontent.com); null creates one (an account holds at most one)."
  type        = string
  default     = null
}

variable "terraform_state_bucket" {
  description = "Bucket of the Terraform state, readable by the CI plan role; null when there is no CI role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false
}
