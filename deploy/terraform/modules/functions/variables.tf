variable "name" {
  description = "Prefix of the schedule group, the dead-letter queue and the schedules, e.g. \"rnr-dev\"."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "functions" {
  description = "The scheduled Lambdas keyed producer, autoscaler and postproc: function name, image (<repository url>:<commit sha>), handler command, sizes, schedule and environment."
  type = map(object({
    function_name        = string
    image_uri            = string
    command              = list(string)
    memory_mb            = optional(number, 512)
    timeout_seconds      = optional(number, 60)
    reserved_concurrency = number
    schedule_expression  = string
    role_arn             = string
    environment          = map(string)
  }))
  nullable = false

  validation {
    condition     = toset(keys(var.functions)) == toset(["producer", "autoscaler", "postproc"])
    error_message = "functions must have exactly the keys producer, autoscaler and postproc."
  }

  # EventBridge Scheduler: rate(1 minute), rate(N minutes|hours|days), cron(6 fields) or at(yyyy-mm-ddThh:mm:ss).
  validation {
    condition = alltrue([
      for f in values(var.functions) : can(regex("^(rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)|cron\\(\\S+( \\S+){5}\\)|at\\(\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\))$", f.schedule_expression))
    ])
    error_message = "Each schedule_expression must be rate(1 minute), rate(N minutes|hours|days) with N > 1, cron(min hour day-of-month month day-of-week year) or at(yyyy-mm-ddThh:mm:ss)."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.memory_mb >= 128 && f.memory_mb <= 10240 && f.timeout_seconds >= 1 && f.timeout_seconds <= 900])
    error_message = "memory_mb must be 128-10240 and timeout_seconds 1-900."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.reserved_concurrency >= 1])
    error_message = "reserved_concurrency must be at least 1 (the autoscaler and the post-processor must run one at a time: 1)."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : can(regex("^[^:@\\s]+(:[A-Za-z0-9_.-]{1,128}|@sha256:[0-9a-f]{64})$", f.image_uri)) && !endswith(f.image_uri, ":latest")])
    error_message = "Each image_uri must name a repository and an exact tag or digest, not latest."
  }
}

variable "architecture" {
  description = "Instruction set of the Lambda images: x86_64 or arm64."
  type        = string
  default     = "x86_64"
  nullable    = false

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "scheduler_role_arn" {
  description = "Role EventBridge Scheduler assumes to invoke the functions (iam module: scheduler)."
  type        = string
  nullable    = false
}

variable "dead_letter_queue_name" {
  description = "Name of the SQS queue receiving failed invocations (undeliverable schedules and failed asynchronous runs)."
  type        = string
  nullable    = false
}

variable "retry_policy" {
  description = "How EventBridge Scheduler retries an invocation it could not deliver: seconds an event may wait (60-86400) and attempts (0-185)."
  type = object({
    maximum_event_age_seconds = optional(number, 300)
    maximum_retry_attempts    = optional(number, 2)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.retry_policy.maximum_event_age_seconds >= 60 && var.retry_policy.maximum_event_age_seconds <= 86400 && var.retry_policy.maximum_retry_attempts >= 0 && var.retry_policy.maximum_retry_attempts <= 185
    error_message = "maximum_event_age_seconds must be 60-86400 and maximum_retry_attempts 0-185."
  }
}

variable "subnet_ids" {
  description = "Private subnets of the functions."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet."
  }
}

variable "security_group_id" {
  description = "Security group of the functions (network module: lambda)."
  type        = string
  nullable    = false
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the functions' environments and log groups."
  type        = string
  nullable    = false
}

variable "log_retention_days" {
  description = "Days the functions' logs are kept."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ..., 3653)."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false
}
