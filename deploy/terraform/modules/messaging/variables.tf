variable "name" {
  description = "Name of the broker and prefix of the secret, e.g. \"rnr-dev\"."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "engine_version" {
  description = "Amazon MQ for RabbitMQ engine version (major.minor). 4.2 is the release Amazon MQ recommends and runs only on mq.m7g instances; 3.13 also runs on mq.t3 and mq.m5."
  type        = string
  default     = "4.2"
  nullable    = false

  validation {
    condition     = contains(["3.13", "4.2"], var.engine_version)
    error_message = "engine_version must be a release Amazon MQ supports for new brokers: 3.13 or 4.2."
  }
}

variable "instance_type" {
  description = "Broker instance type, e.g. mq.m7g.medium (dev) or mq.m7g.large (prod)."
  type        = string
  default     = "mq.m7g.medium"
  nullable    = false

  validation {
    condition     = can(regex("^mq\\.(t3|m5|m7g)\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an Amazon MQ type such as mq.m7g.medium."
  }
}

variable "deployment_mode" {
  description = "SINGLE_INSTANCE (dev) or CLUSTER_MULTI_AZ (prod: three nodes across Availability Zones)."
  type        = string
  default     = "SINGLE_INSTANCE"
  nullable    = false

  validation {
    condition     = contains(["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"], var.deployment_mode)
    error_message = "deployment_mode must be SINGLE_INSTANCE or CLUSTER_MULTI_AZ."
  }
}

variable "username" {
  description = "Broker user the services log in as."
  type        = string
  default     = "rnr"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_.~-]{2,100}$", var.username)) && lower(var.username) != "guest"
    error_message = "username must be 2-100 letters, digits, '_', '.', '~' or '-', and not guest."
  }
}

variable "subnet_ids" {
  description = "Private subnets of the broker: the first is used by a single instance; a cluster spreads over them (give subnets in distinct Availability Zones)."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet."
  }
}

variable "security_group_id" {
  description = "Security group of the broker (from the network module)."
  type        = string
  nullable    = false
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the credentials secret."
  type        = string
  nullable    = false
}

variable "secret_recovery_window_days" {
  description = "Days a deleted credentials secret can be restored (0 deletes at once, for throw-away environments)."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "maintenance_window" {
  description = "Weekly maintenance window start (UTC) for minor version upgrades."
  type = object({
    day_of_week = string
    time_of_day = string
  })
  default = {
    day_of_week = "SUNDAY"
    time_of_day = "04:00"
  }
  nullable = false

  validation {
    condition     = contains(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"], var.maintenance_window.day_of_week) && can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.maintenance_window.time_of_day))
    error_message = "day_of_week must be MONDAY..SUNDAY and time_of_day HH:MM (24 h)."
  }
}

variable "apply_immediately" {
  description = "Apply broker changes now (true) or in the next maintenance window (false)."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false
}
