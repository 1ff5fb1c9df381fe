variable "name" {
  description = "Prefix of the topic, alarm and dashboard names, e.g. \"rnr-dev\"."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by email)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for address in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))])
    error_message = "Every alarm email must be an address."
  }
}

variable "kms_key_arn" {
  description = "KMS key of the SNS topic (its policy must let CloudWatch use it)."
  type        = string
  nullable    = false
}

variable "metric_namespace" {
  description = "Namespace of the pipeline's own metrics (Embedded Metric Format lines and the autoscaler's)."
  type        = string
  default     = "rnr-pipeline"
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

variable "producer_period_seconds" {
  description = "Alarm period of the producer check; at least the producer's schedule interval and a multiple of 60."
  type        = number
  default     = 300
  nullable    = false

  validation {
    condition     = var.producer_period_seconds >= 60 && var.producer_period_seconds % 60 == 0
    error_message = "producer_period_seconds must be a multiple of 60, at least 60."
  }
}

variable "producer_missed_periods" {
  description = "Alarm when the producer has had no successful run for this many periods in a row."
  type        = number
  default     = 3
  nullable    = false

  validation {
    condition     = var.producer_missed_periods >= 1 && var.producer_missed_periods <= 288
    error_message = "producer_missed_periods must be between 1 and 288."
  }
}

variable "worker_log_group_name" {
  description = "Log group of the worker containers (JSON lines with a level field)."
  type        = string
  nullable    = false
}

variable "worker_error_threshold" {
  description = "Alarm when the worker logs more than this many ERROR or CRITICAL lines in 5 minutes."
  type        = number
  default     = 5
  nullable    = false

  validation {
    condition     = var.worker_error_threshold >= 0
    error_message = "worker_error_threshold must be >= 0."
  }
}

variable "oldest_message_age_threshold_seconds" {
  description = "Alarm when the oldest message of the work queue is older than this (published by the autoscaler as OldestMessageAgeSeconds)."
  type        = number
  default     = 1800
  nullable    = false

  validation {
    condition     = var.oldest_message_age_threshold_seconds >= 60
    error_message = "oldest_message_age_threshold_seconds must be at least 60."
  }
}

variable "dead_letter_queue_name" {
  description = "SQS queue of failed invocations (functions module)."
  type        = string
  nullable    = false
}

variable "cluster_name" {
  description = "ECS cluster of the worker."
  type        = string
  nullable    = false
}

variable "worker_service_name" {
  description = "ECS service of the worker."
  type        = string
  nullable    = false
}

variable "broker_name" {
  description = "Amazon MQ broker name (the Broker dimension of AWS/AmazonMQ metrics)."
  type        = string
  nullable    = false
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "worker_not_ready_periods" {
  description = "Alarm when worker tasks run but none has its consumer active for this many 5-minute periods in a row (a starting task loads the hydrofabric first)."
  type        = number
  default     = 3
  nullable    = false

  validation {
    condition     = var.worker_not_ready_periods >= 1 && var.worker_not_ready_periods <= 288
    error_message = "worker_not_ready_periods must be between 1 and 288."
  }
}

variable "extra_alarm_actions" {
  description = "More actions (SNS topic ARNs, e.g. a paging topic) per alarm, keyed by the alarm's name without the prefix: failed-invocations, dead-lettered-products, worker-errors, oldest-message-age, postproc-quarantines, producer-not-succeeding, worker-not-ready. Each notifies them on ALARM and OK, after the module's topic."
  type        = map(list(string))
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for key in keys(var.extra_alarm_actions) : contains(["failed-invocations", "dead-lettered-products", "worker-errors", "oldest-message-age", "postproc-quarantines", "producer-not-succeeding", "worker-not-ready"], key)])
    error_message = "extra_alarm_actions keys must be alarm names without the prefix: failed-invocations, dead-lettered-products, worker-errors, oldest-message-age, postproc-quarantines, producer-not-succeeding or worker-not-ready."
  }

  validation {
    condition     = alltrue(flatten([for arns in values(var.extra_alarm_actions) : [for arn in arns : can(regex("^arn:aws[a-z-]*:sns:", arn))]]))
    error_message = "Every extra alarm action must be an SNS topic ARN."
  }
}

variable "function_log_group_names" {
  description = "Log group of each Lambda, keyed producer, autoscaler and postproc (the dashboard's Logs Insights widgets read the autoscaler's decisions)."
  type        = map(string)
  nullable    = false

  validation {
    condition     = contains(keys(var.function_log_group_names), "autoscaler")
    error_message = "function_log_group_names must name the autoscaler's log group."
  }
}
