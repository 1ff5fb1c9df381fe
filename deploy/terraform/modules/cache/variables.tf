variable "name" {
  description = "Replication group id and prefix of the other names, e.g. \"rnr-dev\"."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "engine_version" {
  description = "Redis OSS engine version of ElastiCache."
  type        = string
  default     = "7.1"
  nullable    = false

  validation {
    condition     = can(regex("^(6\\.2|7\\.[01])$", var.engine_version))
    error_message = "engine_version must be 6.2, 7.0 or 7.1 (auth tokens with in-transit encryption)."
  }
}

variable "node_type" {
  description = "Cache node type, e.g. cache.t4g.micro (dev) or cache.t4g.small (prod)."
  type        = string
  default     = "cache.t4g.micro"
  nullable    = false

  validation {
    condition     = startswith(var.node_type, "cache.")
    error_message = "node_type must be an ElastiCache node type such as cache.t4g.micro."
  }
}

variable "num_cache_clusters" {
  description = "Nodes in the replication group: 1 (dev) or 2-6 (a primary and replicas with automatic failover across Availability Zones)."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6 && floor(var.num_cache_clusters) == var.num_cache_clusters
    error_message = "num_cache_clusters must be a whole number from 1 to 6."
  }
}

variable "snapshot_retention_days" {
  description = "Days of automatic snapshots (the dedupe keys; 0 turns snapshots off)."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = var.snapshot_retention_days >= 0 && var.snapshot_retention_days <= 35
    error_message = "snapshot_retention_days must be between 0 and 35."
  }
}

variable "subnet_ids" {
  description = "Private subnets of the cache nodes."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet."
  }
}

variable "security_group_id" {
  description = "Security group of the cache (from the network module)."
  type        = string
  nullable    = false
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the cache at rest and the auth-token secret."
  type        = string
  nullable    = false
}

variable "secret_recovery_window_days" {
  description = "Days a deleted auth-token secret can be restored (0 deletes at once)."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "apply_immediately" {
  description = "Apply changes now (true) or in the next maintenance window (false)."
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
