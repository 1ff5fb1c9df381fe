# The environment of each service: the variables its settings class reads, named as in
# the README's configuration table (tests/static checks both). Groups mirror the
# settings mixins in rnr/core/settings.py; each service merges the groups it reads.
#
# Not set here: RABBITMQ_URL (local only: in AWS the services use RABBITMQ_ENDPOINT
# with RABBITMQ_SECRET_ARN), AWS_ENDPOINT_URL (emulators only), AWS_REGION for the
# Lambdas (a reserved variable that Lambda sets itself), HTTP_HOST for the Lambdas and
# INVOKE_TOKEN: in AWS the Lambdas run under awslambdaric and serve no HTTP, so there
# is no /invoke to listen for or protect.

locals {
  env_common = {
    LOG_LEVEL = var.settings.log_level
    HTTP_PORT = "8080"
  }

  env_region = {
    AWS_REGION = var.region
  }

  env_broker = {
    RABBITMQ_ENDPOINT                = module.messaging.amqps_endpoint
    RABBITMQ_SECRET_ARN              = module.messaging.secret_arn
    RABBITMQ_EXCHANGE                = var.settings.rabbitmq_exchange
    RABBITMQ_QUEUE                   = var.settings.rabbitmq_queue
    RABBITMQ_QUEUE_TYPE              = var.settings.rabbitmq_queue_type
    RABBITMQ_PUBLISH_TIMEOUT_SECONDS = var.settings.rabbitmq_publish_timeout_seconds
    RETRY_DELAYS_SECONDS             = join(",", [for delay in var.settings.retry_delays_seconds : tostring(delay)])
    MAX_ATTEMPTS                     = var.settings.max_attempts
  }

  env_dedupe = {
    REDIS_URL            = module.cache.redis_url
    DEDUPE_TTL_SECONDS   = var.settings.dedupe_ttl_seconds
    DEDUPE_CLAIM_SECONDS = var.settings.dedupe_claim_seconds
    DEDUPE_KEY_PREFIX    = var.settings.dedupe_key_prefix
  }

  env_upstream = {
    NWS_API_URL          = var.settings.nws_api_url
    NWPS_API_URL         = var.settings.nwps_api_url
    HTTP_USER_AGENT      = var.settings.http_user_agent
    HTTP_TIMEOUT_SECONDS = var.settings.http_timeout_seconds
    HTTP_RETRIES         = var.settings.http_retries
    HTTP_BACKOFF_SECONDS = var.settings.http_backoff_seconds
  }

  env_hydrofabric = {
    INPUT_BUCKET          = module.storage.input_bucket_name
    HYDROFABRIC_LOCATION  = var.hydrofabric_location
    HYDROFABRIC_CACHE_DIR = var.settings.hydrofabric_cache_dir
  }

  env_output = {
    OUTPUT_BUCKET = module.storage.output_bucket_name
    OUTPUT_PREFIX = var.settings.output_prefix
  }

  env_worker = {
    # The services listen on 127.0.0.1 by default; the worker's /healthz, /readyz and
    # /metrics must be reachable on the task's network interface (it serves no /invoke).
    HTTP_HOST                 = "0.0.0.0"
    FLOWPATH_ATTRIBUTES_LAYER = var.settings.flowpath_attributes_layer
    WORKER_PREFETCH           = var.settings.worker_prefetch
    WORKER_GAUGE_CONCURRENCY  = var.settings.worker_gauge_concurrency
    # The worker plans its whole stop (drain, requeue, protection release) inside the
    # task's stopTimeout: one number, passed from the same variable as the task's.
    WORKER_STOP_TIMEOUT_SECONDS = var.worker.stop_timeout_seconds
    # ECS_AGENT_URI, which the worker also reads, is injected by the ECS agent.
    WORKER_SCALE_IN_PROTECTION_MINUTES = var.settings.worker_scale_in_protection_minutes
    # Nothing scrapes /metrics in AWS: the worker writes its registry to its log as EMF,
    # which CloudWatch Logs turns into metrics (the dashboard and alarms read them).
    WORKER_EMF_INTERVAL_SECONDS = var.worker.emf_interval_seconds
  }

  # The producer wakes the autoscaler after a run that published (an asynchronous
  # invoke; the iam module allows it on that one function). The name is known before
  # the function exists, so no module waits on another.
  env_producer = {
    PRODUCER_CONCURRENCY     = var.settings.producer_concurrency
    AUTOSCALER_FUNCTION_NAME = local.function_names["autoscaler"]
  }

  # The autoscaler's target and policy; its REDIS_URL keeps the policy's window.
  env_autoscaler = {
    RABBITMQ_MANAGEMENT_URL          = module.messaging.management_url
    ECS_CLUSTER                      = local.cluster_name
    ECS_SERVICE                      = local.worker_service_name
    AUTOSCALER_MODE                  = var.settings.autoscaler_mode
    AUTOSCALER_MIN_TASKS             = var.settings.autoscaler_min_tasks
    AUTOSCALER_MAX_TASKS             = var.settings.autoscaler_max_tasks
    AUTOSCALER_TARGET_PER_TASK       = var.settings.autoscaler_target_per_task
    AUTOSCALER_ACTIVATION_THRESHOLD  = var.settings.autoscaler_activation_threshold
    AUTOSCALER_STABILIZATION_SECONDS = var.settings.autoscaler_stabilization_seconds
    AUTOSCALER_SCALE_IN_STEP         = var.settings.autoscaler_scale_in_step
    AUTOSCALER_METRIC_NAMESPACE      = local.metric_namespace
    AUTOSCALER_STATE_KEY_PREFIX      = var.settings.autoscaler_state_key_prefix
  }

  env_postproc = {
    POSTPROC_PREFIX                 = var.settings.postproc_prefix
    POSTPROC_MAX_OBJECTS_PER_RUN    = var.settings.postproc_max_objects_per_run
    POSTPROC_CONCURRENCY            = var.settings.postproc_concurrency
    POSTPROC_MAX_FORECAST_AGE_HOURS = var.settings.postproc_max_forecast_age_hours
  }

  environment = {
    worker     = merge(local.env_common, local.env_region, local.env_broker, local.env_hydrofabric, local.env_output, local.env_upstream, local.env_worker)
    producer   = merge(local.env_common, local.env_broker, local.env_dedupe, local.env_upstream, local.env_producer)
    autoscaler = merge(local.env_common, local.env_broker, local.env_dedupe, local.env_autoscaler)
    postproc   = merge(local.env_common, local.env_hydrofabric, local.env_output, local.env_postproc)
  }
}
