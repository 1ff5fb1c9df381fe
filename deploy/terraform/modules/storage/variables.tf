variable "create_buckets" {
  description = "true: create the input and output buckets here. false: use existing buckets owned elsewhere (the seed's layout); their owner adds the statement in the bucket_policy_statements output."
  type        = bool
  default     = false
  nullable    = false
}

variable "input_bucket_name" {
  description = "Bucket holding the hydrofabric (INPUT_BUCKET). May be the same bucket as output_bucket_name when existing buckets are used."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.input_bucket_name))
    error_message = "input_bucket_name must be a valid S3 bucket name."
  }
}

variable "output_bucket_name" {
  description = "Bucket the worker writes forecasts to and the post-processor reads and writes (OUTPUT_BUCKET)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.output_bucket_name))
    error_message = "output_bucket_name must be a valid S3 bucket name."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the default encryption of buckets created here."
  type        = string
  nullable    = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object version is kept in buckets created here."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "output_expiration" {
  description = "Optional expiry of current objects under a prefix of a created output bucket, e.g. { prefix = \"replace_and_route/\", days = 365 }; null keeps forecasts forever."
  type = object({
    prefix = string
    days   = number
  })
  default = null

  validation {
    condition     = var.output_expiration == null || try(var.output_expiration.days >= 1, false)
    error_message = "output_expiration.days must be at least 1."
  }
}

variable "s3_statements" {
  description = "The S3 permissions the pipeline's roles need (iam module output s3_statements): written as a bucket-policy statement for the owner of existing buckets."
  type = list(object({
    sid       = string
    role_arn  = string
    actions   = list(string)
    resources = list(string)
    prefixes  = list(string)
  }))
  nullable = false
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false
}
