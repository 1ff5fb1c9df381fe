variable "cluster_name" {
  description = "Name of the ECS cluster, e.g. \"rnr-dev\"."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.cluster_name))
    error_message = "cluster_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "service_name" {
  description = "Name of the worker's ECS service and task definition family, e.g. \"rnr-dev-worker\"."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.service_name))
    error_message = "service_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "image" {
  description = "Worker image: <repository url>:<commit sha>."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[^:@\\s]+(:[A-Za-z0-9_.-]{1,128}|@sha256:[0-9a-f]{64})$", var.image)) && !endswith(var.image, ":latest")
    error_message = "image must name a repository and an exact tag or digest, not latest."
  }
}

variable "cpu" {
  description = "Task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 1024
  nullable    = false

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be a Fargate size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "memory" {
  description = "Task memory in MiB (must fit the CPU size; the worker holds the hydrofabric index, about 1.1 GiB for a million flowpaths)."
  type        = number
  default     = 4096
  nullable    = false

  validation {
    condition     = var.memory >= 512 && var.memory <= 122880 && var.memory % 256 == 0
    error_message = "memory must be between 512 and 122880 MiB, in steps of 256."
  }
}

variable "ephemeral_storage_gib" {
  description = "Task ephemeral storage (GiB) for the hydrofabric copy and the numba cache under /tmp."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.ephemeral_storage_gib >= 21 && var.ephemeral_storage_gib <= 200
    error_message = "ephemeral_storage_gib must be between 21 and 200."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the image and tasks: X86_64 or ARM64."
  type        = string
  default     = "X86_64"
  nullable    = false

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "desired_count" {
  description = "Tasks when the service is created; afterwards the autoscaler owns the count (Terraform ignores it)."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = var.desired_count >= 0 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a whole number >= 0."
  }
}

variable "capacity" {
  description = "Capacity provider split: the first fargate_base tasks on FARGATE, the rest weighted between FARGATE and FARGATE_SPOT (the worker requeues work on interruption)."
  type = object({
    fargate_base   = optional(number, 1)
    fargate_weight = optional(number, 1)
    spot_weight    = optional(number, 1)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.capacity.fargate_base >= 0 && var.capacity.fargate_weight >= 0 && var.capacity.spot_weight >= 0 && var.capacity.fargate_weight + var.capacity.spot_weight > 0
    error_message = "Weights and base must be >= 0 and at least one weight > 0."
  }
}

variable "stop_timeout_seconds" {
  description = "Seconds between SIGTERM and SIGKILL (the task's stopTimeout); pass the same number to the worker as WORKER_STOP_TIMEOUT_SECONDS."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.stop_timeout_seconds >= 2 && var.stop_timeout_seconds <= 120
    error_message = "stop_timeout_seconds must be between 2 and 120 (the Fargate maximum)."
  }
}

variable "container_port" {
  description = "HTTP_PORT of the worker (/healthz, /readyz, /metrics)."
  type        = number
  default     = 8080
  nullable    = false

  validation {
    condition     = var.container_port >= 1024 && var.container_port <= 65535
    error_message = "container_port must be an unprivileged port (the image runs as a non-root user)."
  }
}

variable "environment" {
  description = "Environment variables of the worker container (the README's configuration table)."
  type        = map(string)
  nullable    = false
}

variable "secrets" {
  description = "Environment variables ECS fills from Secrets Manager (name => secret ARN, optionally ARN:json-key::); the execution role must be allowed to read them."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for arn in values(var.secrets) : startswith(arn, "arn:")])
    error_message = "Every secret must be given by ARN."
  }
}

variable "task_role_arn" {
  description = "Role of the worker containers (iam module: ecs_task)."
  type        = string
  nullable    = false
}

variable "execution_role_arn" {
  description = "Role of the ECS agent for this task (iam module: ecs_task_execution)."
  type        = string
  nullable    = false
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet."
  }
}

variable "security_group_id" {
  description = "Security group of the tasks (network module: worker)."
  type        = string
  nullable    = false
}

variable "log_group_name" {
  description = "CloudWatch log group of the worker containers."
  type        = string
  nullable    = false
}

variable "log_retention_days" {
  description = "Days the worker logs are kept."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ..., 3653)."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the log group."
  type        = string
  nullable    = false
}

variable "target_tracking" {
  description = "Application Auto Scaling on the autoscaler's BacklogPerTask metric (its `metric` mode): null leaves the count to the autoscaler (`direct` mode)."
  type = object({
    metric_namespace = string
    target_value     = number
    min_tasks        = number
    max_tasks        = number
  })
  default = null

  validation {
    condition     = var.target_tracking == null || try(var.target_tracking.target_value > 0 && var.target_tracking.min_tasks >= 0 && var.target_tracking.max_tasks >= max(1, var.target_tracking.min_tasks), false)
    error_message = "target_tracking needs target_value > 0 and 0 <= min_tasks <= max_tasks (max_tasks >= 1)."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false
}
