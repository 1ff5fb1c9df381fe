# ------------------------------------------------------------------------- naming

variable "app" {
  description = "Application name, the first part of every resource name (<app>-<env>-...)."
  type        = string
  default     = "rnr"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,11}$", var.app))
    error_message = "app must be 2-12 lowercase letters or digits, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name, the second part of every resource name: dev, staging or prod."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "region" {
  description = "AWS region of the stack (AWS_REGION of the worker)."
  type        = string
  default     = "us-east-1"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "tags" {
  description = "Extra tags on every resource (Application, Environment and ManagedBy are always set)."
  type        = map(string)
  default     = {}
  nullable    = false
}

# ------------------------------------------------------------------------- network

variable "vpc_id" {
  description = "Id of the existing VPC; give this or vpc_name."
  type        = string
  default     = null
}

variable "vpc_name" {
  description = "Name tag of the existing VPC, used when vpc_id is null."
  type        = string
  default     = null
}

variable "private_subnet_ids" {
  description = "Private subnets (with NAT egress) for the worker, Lambdas, broker and cache; empty looks them up by private_subnet_name_patterns."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "private_subnet_name_patterns" {
  description = "Name-tag patterns of the private subnets, used when private_subnet_ids is empty."
  type        = list(string)
  default     = ["*private*"]
  nullable    = false
}

# ------------------------------------------------------------------------- images

variable "image_tag" {
  description = "Tag of the four images to run: the full commit SHA images.yml pushed (tags are immutable)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,128}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be an exact tag (the commit SHA), not latest."
  }
}

variable "architecture" {
  description = "CPU architecture the images are built for: x86_64 or arm64 (images.yml builds linux/amd64)."
  type        = string
  default     = "x86_64"
  nullable    = false

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

# ------------------------------------------------------------------------- storage

variable "create_buckets" {
  description = "true: create the input and output buckets. false: use existing buckets (the seed's layout) and hand their owner the bucket_policy_statements output."
  type        = bool
  default     = false
  nullable    = false
}

variable "input_bucket_name" {
  description = "INPUT_BUCKET: the bucket holding the hydrofabric."
  type        = string
  nullable    = false
}

variable "output_bucket_name" {
  description = "OUTPUT_BUCKET: where forecasts and the post-processed table are written (may equal input_bucket_name)."
  type        = string
  nullable    = false
}

variable "existing_bucket_kms_key_arns" {
  description = "KMS keys of existing SSE-KMS buckets (their owner must also allow the roles in the key policy); empty for SSE-S3 or created buckets."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "hydrofabric_location" {
  description = "HYDROFABRIC_LOCATION: a .gpkg key or a prefix of <layer>.parquet objects in the input bucket."
  type        = string
  nullable    = false

  validation {
    condition     = length(trim(var.hydrofabric_location, "/")) > 0
    error_message = "hydrofabric_location must not be empty."
  }
}

variable "output_expiration" {
  description = "Expire forecasts in a created output bucket after this many days ({ prefix, days }); null keeps them."
  type = object({
    prefix = string
    days   = number
  })
  default = null
}

# ------------------------------------------------------------------------- broker and cache

variable "broker" {
  description = "Amazon MQ for RabbitMQ: engine version, instance type, SINGLE_INSTANCE (dev) or CLUSTER_MULTI_AZ (prod), user name."
  type = object({
    engine_version    = optional(string, "4.2")
    instance_type     = optional(string, "mq.m7g.medium")
    deployment_mode   = optional(string, "SINGLE_INSTANCE")
    username          = optional(string, "rnr")
    apply_immediately = optional(bool, false)
  })
  default  = {}
  nullable = false
}

variable "cache" {
  description = "ElastiCache for Redis: node type, node count (2+ enables failover and Multi-AZ), engine version, snapshot days."
  type = object({
    node_type               = optional(string, "cache.t4g.micro")
    num_cache_clusters      = optional(number, 1)
    engine_version          = optional(string, "7.1")
    snapshot_retention_days = optional(number, 1)
  })
  default  = {}
  nullable = false
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret (broker credentials, cache token) can be restored; 0 deletes at once (throw-away environments)."
  type        = number
  default     = 7
  nullable    = false
}

# ------------------------------------------------------------------------- worker

variable "worker" {
  description = "Worker task size and placement: cpu units, memory MiB, ephemeral storage GiB, initial task count, FARGATE/FARGATE_SPOT split, stop timeout; and the seconds between its EMF metric flushes (0 = none)."
  type = object({
    cpu                   = optional(number, 1024)
    memory                = optional(number, 4096)
    ephemeral_storage_gib = optional(number, 30)
    desired_count         = optional(number, 1)
    fargate_base          = optional(number, 1)
    fargate_weight        = optional(number, 1)
    spot_weight           = optional(number, 1)
    stop_timeout_seconds  = optional(number, 30)
    # WORKER_EMF_INTERVAL_SECONDS: how often the worker writes its metrics as EMF lines
    # (CloudWatch); 0 turns it off (the service's own default, for local runs).
    emf_interval_seconds = optional(number, 60)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.worker.stop_timeout_seconds >= 8 && var.worker.stop_timeout_seconds <= 120
    error_message = "worker.stop_timeout_seconds must be 8-120: the worker reserves 7 s of it for requeueing, releasing scale-in protection and exiting, and drains for the rest."
  }

  validation {
    condition     = var.worker.emf_interval_seconds >= 0 && var.worker.emf_interval_seconds <= 3600
    error_message = "worker.emf_interval_seconds must be 0 (no EMF metrics) to 3600; 60 matches CloudWatch's standard resolution."
  }
}

variable "worker_secrets" {
  description = "Extra worker environment variables filled by ECS from Secrets Manager (name => secret ARN). The broker secret is not one: the worker reads RABBITMQ_SECRET_ARN itself and re-reads it after a rotation."
  type        = map(string)
  default     = {}
  nullable    = false
}

# ------------------------------------------------------------------------- functions

variable "functions" {
  description = "Schedules (EventBridge Scheduler expressions), memory, timeouts and the producer's reserved concurrency (the autoscaler and the post-processor always have 1). The post-processor's 3008 MB covers building its flowpath lookup from a national layer (about twice the geometry column, once per hydrofabric version)."
  type = object({
    producer_schedule             = optional(string, "rate(1 minute)")
    autoscaler_schedule           = optional(string, "rate(1 minute)")
    postproc_schedule             = optional(string, "rate(5 minutes)")
    producer_memory_mb            = optional(number, 512)
    autoscaler_memory_mb          = optional(number, 256)
    postproc_memory_mb            = optional(number, 3008)
    producer_timeout_seconds      = optional(number, 120)
    autoscaler_timeout_seconds    = optional(number, 60)
    postproc_timeout_seconds      = optional(number, 300)
    producer_reserved_concurrency = optional(number, 2)
    retry_max_event_age_seconds   = optional(number, 300)
    retry_max_attempts            = optional(number, 2)
  })
  default  = {}
  nullable = false
}

# ------------------------------------------------------------------------- service settings

variable "settings" {
  description = "Values of the services' environment variables (the README's configuration table); the defaults are the services' own."
  type = object({
    log_level                          = optional(string, "INFO")
    rabbitmq_exchange                  = optional(string, "rnr")
    rabbitmq_queue                     = optional(string, "rnr.products")
    rabbitmq_queue_type                = optional(string, "auto")
    rabbitmq_publish_timeout_seconds   = optional(number, 10)
    retry_delays_seconds               = optional(list(number), [5, 30, 120, 600])
    max_attempts                       = optional(number, 5)
    dedupe_ttl_seconds                 = optional(number, 604800)
    dedupe_claim_seconds               = optional(number, 300)
    dedupe_key_prefix                  = optional(string, "rnr:product:")
    producer_concurrency               = optional(number, 16)
    nws_api_url                        = optional(string, "https://api.weather.gov")
    nwps_api_url                       = optional(string, "https://api.water.noaa.gov/nwps/v1")
    http_user_agent                    = optional(string, "rnr-pipeline (https://github.com/rnr-pipeline/rnr-pipeline)")
    http_timeout_seconds               = optional(number, 10)
    http_retries                       = optional(number, 3)
    http_backoff_seconds               = optional(number, 0.5)
    hydrofabric_cache_dir              = optional(string, "/tmp/rnr-hydrofabric")
    flowpath_attributes_layer          = optional(string, "flowpath-attributes-ml")
    output_prefix                      = optional(string, "replace_and_route")
    postproc_prefix                    = optional(string, "postprocess")
    postproc_max_objects_per_run       = optional(number, 500)
    postproc_concurrency               = optional(number, 8)
    postproc_max_forecast_age_hours    = optional(number, 48)
    worker_prefetch                    = optional(number, 8)
    worker_gauge_concurrency           = optional(number, 4)
    worker_scale_in_protection_minutes = optional(number, 10)
    autoscaler_mode                    = optional(string, "direct")
    autoscaler_min_tasks               = optional(number, 0)
    autoscaler_max_tasks               = optional(number, 10)
    autoscaler_target_per_task         = optional(number, 25)
    autoscaler_activation_threshold    = optional(number, 1)
    autoscaler_stabilization_seconds   = optional(number, 300)
    autoscaler_scale_in_step           = optional(number, 2)
    autoscaler_state_key_prefix        = optional(string, "rnr:autoscaler:")
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.settings.log_level)
    error_message = "settings.log_level must be DEBUG, INFO, WARNING or ERROR."
  }

  validation {
    condition     = contains(["auto", "quorum", "classic"], var.settings.rabbitmq_queue_type)
    error_message = "settings.rabbitmq_queue_type must be auto, quorum or classic."
  }

  validation {
    condition     = length(var.settings.retry_delays_seconds) > 0 && alltrue([for delay in var.settings.retry_delays_seconds : delay >= 0.001])
    error_message = "settings.retry_delays_seconds needs at least one delay, each >= 0.001 s."
  }

  validation {
    condition     = var.settings.max_attempts >= 1 && var.settings.max_attempts <= 50 && var.settings.producer_concurrency >= 1 && var.settings.producer_concurrency <= 256
    error_message = "settings.max_attempts must be 1-50 and settings.producer_concurrency 1-256."
  }

  validation {
    condition     = var.settings.worker_prefetch >= 1 && var.settings.worker_prefetch <= 1000 && var.settings.worker_gauge_concurrency >= 1 && var.settings.worker_gauge_concurrency <= 64 && var.settings.worker_scale_in_protection_minutes >= 1 && var.settings.worker_scale_in_protection_minutes <= 2880
    error_message = "settings.worker_prefetch must be 1-1000, worker_gauge_concurrency 1-64 and worker_scale_in_protection_minutes 1-2880."
  }

  validation {
    condition     = var.settings.dedupe_ttl_seconds >= 60 && var.settings.dedupe_claim_seconds >= 1
    error_message = "settings.dedupe_ttl_seconds must be >= 60 and dedupe_claim_seconds >= 1."
  }

  validation {
    condition     = alltrue([for url in [var.settings.nws_api_url, var.settings.nwps_api_url] : can(regex("^https://", url))])
    error_message = "settings.nws_api_url and nwps_api_url must be https:// URLs."
  }

  validation {
    condition     = contains(["direct", "metric", "dry-run"], var.settings.autoscaler_mode) && var.settings.autoscaler_min_tasks >= 0 && var.settings.autoscaler_max_tasks >= max(1, var.settings.autoscaler_min_tasks) && var.settings.autoscaler_max_tasks <= 1000 && var.settings.autoscaler_target_per_task >= 1 && var.settings.autoscaler_activation_threshold >= 1 && var.settings.autoscaler_stabilization_seconds >= 0 && var.settings.autoscaler_stabilization_seconds <= 3600 && var.settings.autoscaler_scale_in_step >= 1
    error_message = "settings.autoscaler_mode must be direct, metric or dry-run; 0 <= autoscaler_min_tasks <= autoscaler_max_tasks (1-1000); autoscaler_target_per_task, activation_threshold and scale_in_step >= 1; stabilization_seconds 0-3600."
  }

  validation {
    condition     = var.settings.postproc_max_objects_per_run >= 1 && var.settings.postproc_max_objects_per_run <= 100000 && var.settings.postproc_concurrency >= 1 && var.settings.postproc_concurrency <= 64 && var.settings.postproc_max_forecast_age_hours > 0
    error_message = "settings.postproc_max_objects_per_run must be 1-100000, postproc_concurrency 1-64 and postproc_max_forecast_age_hours > 0."
  }

  validation {
    condition     = !startswith("${trim(var.settings.output_prefix, "/")}/", "${trim(var.settings.postproc_prefix, "/")}/") && !startswith("${trim(var.settings.postproc_prefix, "/")}/", "${trim(var.settings.output_prefix, "/")}/")
    error_message = "settings.output_prefix and settings.postproc_prefix must not contain one another (POSTPROC_PREFIX holds quarantined .nc files)."
  }

  validation {
    condition     = trim(var.settings.output_prefix, "/") != trim(var.settings.postproc_prefix, "/") && length(trim(var.settings.output_prefix, "/")) > 0 && length(trim(var.settings.postproc_prefix, "/")) > 0
    error_message = "settings.output_prefix and settings.postproc_prefix must be distinct, non-empty prefixes."
  }
}

# ------------------------------------------------------------------------- observability

variable "log_retention_days" {
  description = "Days the worker and Lambda logs are kept."
  type        = number
  default     = 30
  nullable    = false
}

variable "alarm_emails" {
  description = "Addresses notified of alarms (each confirms the SNS subscription)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "alarms" {
  description = "Alarm thresholds: producer periods without a successful run, worker error lines per 5 minutes, oldest message age, 5-minute periods of no worker consuming; and extra actions (SNS topic ARNs) per alarm, keyed by alarm name without the prefix (see modules/observability)."
  type = object({
    producer_period_seconds              = optional(number, 300)
    producer_missed_periods              = optional(number, 3)
    worker_error_threshold               = optional(number, 5)
    oldest_message_age_threshold_seconds = optional(number, 1800)
    worker_not_ready_periods             = optional(number, 3)
    extra_actions                        = optional(map(list(string)), {})
  })
  default  = {}
  nullable = false
}

# ------------------------------------------------------------------------- CI

variable "github_repository" {
  description = "\"owner/name\" of the GitHub repository allowed to push images (main) and plan (pull requests) through OIDC; null creates no CI roles."
  type        = string
  default     = null
}

variable "github_oidc_provider_arn" {
  description = "The account's existing GitHub OIDC provider; null creates it (with github_repository)."
  type        = string
  default     = null
}

variable "terraform_state_bucket" {
  description = "Bucket of this Terraform state (the CI plan role reads it)."
  type        = string
  default     = null
}
