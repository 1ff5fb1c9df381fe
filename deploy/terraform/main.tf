# rnr-pipeline on AWS: one root module wiring one module per concern.
#
#   network        security groups in an existing VPC
#   messaging      Amazon MQ for RabbitMQ + credentials secret
#   cache          ElastiCache Redis (producer dedupe)
#   registry       ECR repositories
#   iam            least-privilege roles
#   storage        buckets (new or existing) + bucket-policy hand-off
#   compute        ECS cluster + worker service
#   functions      producer, autoscaler, postproc Lambdas + schedules
#   observability  alarms, SNS topic, dashboard
#
# Names: everything is "<app>-<env>..." (local.name). The services' environment
# variables are in environment.tf.

locals {
  name = "${var.app}-${var.environment}"

  # Where the pipeline's own metrics go (EMF lines, the autoscaler's); the autoscaler's
  # role may publish to this namespace only.
  metric_namespace = "rnr-pipeline"

  cluster_name           = local.name
  worker_service_name    = "${local.name}-worker"
  worker_log_group_name  = "/ecs/${local.name}/worker"
  dead_letter_queue_name = "${local.name}-failed-invocations"
  function_names         = { for service in ["producer", "autoscaler", "postproc"] : service => "${local.name}-${service}" }

  # The Lambda handler of each image (the Dockerfile target's CMD; run by awslambdaric).
  handler_commands = {
    producer   = ["services.producer.handler.handler"]
    autoscaler = ["services.autoscaler.handler.handler"]
    postproc   = ["services.postproc.handler.handler"]
  }

  images = { for image, url in module.registry.repository_urls : image => "${url}:${var.image_tag}" }
}

module "network" {
  source = "./modules/network"

  name                         = local.name
  vpc_id                       = var.vpc_id
  vpc_name                     = var.vpc_name
  private_subnet_ids           = var.private_subnet_ids
  private_subnet_name_patterns = var.private_subnet_name_patterns
  tags                         = var.tags
}

module "messaging" {
  source = "./modules/messaging"

  name                        = local.name
  engine_version              = var.broker.engine_version
  instance_type               = var.broker.instance_type
  deployment_mode             = var.broker.deployment_mode
  username                    = var.broker.username
  apply_immediately           = var.broker.apply_immediately
  subnet_ids                  = module.network.private_subnet_ids
  security_group_id           = module.network.broker_security_group_id
  kms_key_arn                 = aws_kms_key.this.arn
  secret_recovery_window_days = var.secret_recovery_window_days
  tags                        = var.tags
}

module "cache" {
  source = "./modules/cache"

  name                        = local.name
  node_type                   = var.cache.node_type
  num_cache_clusters          = var.cache.num_cache_clusters
  engine_version              = var.cache.engine_version
  snapshot_retention_days     = var.cache.snapshot_retention_days
  subnet_ids                  = module.network.private_subnet_ids
  security_group_id           = module.network.cache_security_group_id
  kms_key_arn                 = aws_kms_key.this.arn
  secret_recovery_window_days = var.secret_recovery_window_days
  tags                        = var.tags
}

module "registry" {
  source = "./modules/registry"

  name        = local.name
  kms_key_arn = aws_kms_key.this.arn
  tags        = var.tags
}

module "iam" {
  source = "./modules/iam"

  name                     = local.name
  input_bucket_name        = var.input_bucket_name
  output_bucket_name       = var.output_bucket_name
  hydrofabric_location     = var.hydrofabric_location
  output_prefix            = var.settings.output_prefix
  postproc_prefix          = var.settings.postproc_prefix
  bucket_kms_key_arns      = var.create_buckets ? [aws_kms_key.this.arn] : var.existing_bucket_kms_key_arns
  kms_key_arn              = aws_kms_key.this.arn
  broker_secret_arn        = module.messaging.secret_arn
  worker_secret_arns       = values(var.worker_secrets)
  cluster_name             = local.cluster_name
  worker_service_name      = local.worker_service_name
  worker_log_group_name    = local.worker_log_group_name
  function_names           = local.function_names
  dead_letter_queue_name   = local.dead_letter_queue_name
  metric_namespace         = local.metric_namespace
  ecr_repository_names     = module.registry.repository_names
  managed_secret_arns      = [module.messaging.secret_arn, module.cache.auth_token_secret_arn]
  github_repository        = var.github_repository
  github_oidc_provider_arn = var.github_oidc_provider_arn
  terraform_state_bucket   = var.terraform_state_bucket
  tags                     = var.tags
}

module "storage" {
  source = "./modules/storage"

  create_buckets     = var.create_buckets
  input_bucket_name  = var.input_bucket_name
  output_bucket_name = var.output_bucket_name
  kms_key_arn        = aws_kms_key.this.arn
  output_expiration  = var.output_expiration
  s3_statements      = module.iam.s3_statements
  tags               = var.tags
}

module "compute" {
  source = "./modules/compute"

  cluster_name          = local.cluster_name
  service_name          = local.worker_service_name
  image                 = local.images["worker"]
  cpu                   = var.worker.cpu
  memory                = var.worker.memory
  ephemeral_storage_gib = var.worker.ephemeral_storage_gib
  cpu_architecture      = var.architecture == "arm64" ? "ARM64" : "X86_64"
  desired_count         = var.worker.desired_count
  stop_timeout_seconds  = var.worker.stop_timeout_seconds
  container_port        = tonumber(local.environment.worker["HTTP_PORT"])
  environment           = local.environment.worker
  secrets               = var.worker_secrets
  task_role_arn         = module.iam.role_arns["ecs_task"]
  execution_role_arn    = module.iam.role_arns["ecs_task_execution"]
  subnet_ids            = module.network.private_subnet_ids
  security_group_id     = module.network.worker_security_group_id
  log_group_name        = local.worker_log_group_name
  log_retention_days    = var.log_retention_days
  kms_key_arn           = aws_kms_key.this.arn
  tags                  = var.tags

  # In `metric` mode Application Auto Scaling tracks the autoscaler's BacklogPerTask.
  target_tracking = var.settings.autoscaler_mode != "metric" ? null : {
    metric_namespace = local.metric_namespace
    target_value     = var.settings.autoscaler_target_per_task
    min_tasks        = var.settings.autoscaler_min_tasks
    max_tasks        = var.settings.autoscaler_max_tasks
  }

  capacity = {
    fargate_base   = var.worker.fargate_base
    fargate_weight = var.worker.fargate_weight
    spot_weight    = var.worker.spot_weight
  }
}

module "functions" {
  source = "./modules/functions"

  name                   = local.name
  architecture           = var.architecture
  scheduler_role_arn     = module.iam.role_arns["scheduler"]
  dead_letter_queue_name = local.dead_letter_queue_name
  subnet_ids             = module.network.private_subnet_ids
  security_group_id      = module.network.lambda_security_group_id
  kms_key_arn            = aws_kms_key.this.arn
  log_retention_days     = var.log_retention_days
  tags                   = var.tags

  retry_policy = {
    maximum_event_age_seconds = var.functions.retry_max_event_age_seconds
    maximum_retry_attempts    = var.functions.retry_max_attempts
  }

  functions = {
    producer = {
      function_name        = local.function_names["producer"]
      image_uri            = local.images["producer"]
      command              = local.handler_commands["producer"]
      memory_mb            = var.functions.producer_memory_mb
      timeout_seconds      = var.functions.producer_timeout_seconds
      reserved_concurrency = var.functions.producer_reserved_concurrency
      schedule_expression  = var.functions.producer_schedule
      role_arn             = module.iam.role_arns["producer"]
      environment          = local.environment.producer
    }
    autoscaler = {
      function_name        = local.function_names["autoscaler"]
      image_uri            = local.images["autoscaler"]
      command              = local.handler_commands["autoscaler"]
      memory_mb            = var.functions.autoscaler_memory_mb
      timeout_seconds      = var.functions.autoscaler_timeout_seconds
      reserved_concurrency = 1
      schedule_expression  = var.functions.autoscaler_schedule
      role_arn             = module.iam.role_arns["autoscaler"]
      environment          = local.environment.autoscaler
    }
    postproc = {
      function_name        = local.function_names["postproc"]
      image_uri            = local.images["postproc"]
      command              = local.handler_commands["postproc"]
      memory_mb            = var.functions.postproc_memory_mb
      timeout_seconds      = var.functions.postproc_timeout_seconds
      reserved_concurrency = 1
      schedule_expression  = var.functions.postproc_schedule
      role_arn             = module.iam.role_arns["postproc"]
      environment          = local.environment.postproc
    }
  }
}

module "observability" {
  source = "./modules/observability"

  name                                 = local.name
  alarm_emails                         = var.alarm_emails
  metric_namespace                     = local.metric_namespace
  kms_key_arn                          = aws_kms_key.this.arn
  function_names                       = module.functions.function_names
  producer_period_seconds              = var.alarms.producer_period_seconds
  producer_missed_periods              = var.alarms.producer_missed_periods
  worker_log_group_name                = module.compute.log_group_name
  worker_error_threshold               = var.alarms.worker_error_threshold
  oldest_message_age_threshold_seconds = var.alarms.oldest_message_age_threshold_seconds
  worker_not_ready_periods             = var.alarms.worker_not_ready_periods
  extra_alarm_actions                  = var.alarms.extra_actions
  function_log_group_names             = module.functions.log_group_names
  dead_letter_queue_name               = module.functions.dead_letter_queue_name
  cluster_name                         = module.compute.cluster_name
  worker_service_name                  = module.compute.service_name
  broker_name                          = module.messaging.broker_name
  tags                                 = var.tags
}
