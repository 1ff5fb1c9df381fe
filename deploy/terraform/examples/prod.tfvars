# Production: new versioned buckets, a three-node broker across Availability Zones, a
# primary and a replica for the cache, one on-demand worker always, Spot above it.
#
#   terraform init -backend-config=examples/backend-prod.s3.tfbackend
#   terraform plan -var-file=examples/prod.tfvars -var image_tag=<commit sha>

app         = "rnr"
environment = "prod"
region      = "us-east-1"

vpc_id             = "vpc-0123456789abcdef0"
private_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"]

create_buckets       = true
input_bucket_name    = "example-rnr-prod-input"
output_bucket_name   = "example-rnr-prod-output"
hydrofabric_location = "hydrofabric/v2.2/parquet"

output_expiration = {
  prefix = "replace_and_route/"
  days   = 730
}

broker = {
  engine_version  = "4.2"
  instance_type   = "mq.m7g.large"
  deployment_mode = "CLUSTER_MULTI_AZ"
}

cache = {
  node_type               = "cache.t4g.small"
  num_cache_clusters      = 2
  snapshot_retention_days = 7
}

secret_recovery_window_days = 30

worker = {
  cpu                   = 2048
  memory                = 8192
  ephemeral_storage_gib = 50
  desired_count         = 2
  fargate_base          = 1
  fargate_weight        = 1
  spot_weight           = 3
}

functions = {
  producer_schedule             = "rate(1 minute)"
  autoscaler_schedule           = "rate(1 minute)"
  postproc_schedule             = "rate(5 minutes)"
  producer_reserved_concurrency = 2
}

settings = {
  log_level            = "INFO"
  autoscaler_mode      = "direct"
  autoscaler_min_tasks = 1
  autoscaler_max_tasks = 10
}

log_retention_days = 365
alarm_emails       = ["flood-ops@example.com"]

alarms = {
  producer_period_seconds              = 300
  producer_missed_periods              = 3
  worker_error_threshold               = 5
  oldest_message_age_threshold_seconds = 1800
}

github_repository      = "example-org/rnr-pipeline"
terraform_state_bucket = "example-rnr-terraform-state"
