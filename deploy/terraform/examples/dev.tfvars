# Development: the seed's layout (one existing bucket owned by the data team), the
# smallest broker and cache, one worker task, Spot for everything above it.
#
#   terraform init -backend-config=examples/backend-dev.s3.tfbackend
#   terraform plan -var-file=examples/dev.tfvars -var image_tag=<commit sha>

app         = "rnr"
environment = "dev"
region      = "us-east-1"

vpc_name                     = "shared-dev"
private_subnet_name_patterns = ["shared-dev-private-*"]

create_buckets       = false
input_bucket_name    = "example-hydro-data-dev"
output_bucket_name   = "example-hydro-data-dev"
hydrofabric_location = "hydrofabric/v2.2/parquet"

broker = {
  engine_version  = "4.2"
  instance_type   = "mq.m7g.medium"
  deployment_mode = "SINGLE_INSTANCE"
}

cache = {
  node_type               = "cache.t4g.micro"
  num_cache_clusters      = 1
  snapshot_retention_days = 0
}

secret_recovery_window_days = 0

worker = {
  cpu            = 1024
  memory         = 4096
  desired_count  = 1
  fargate_base   = 0
  fargate_weight = 0
  spot_weight    = 1
}

functions = {
  producer_schedule             = "rate(5 minutes)"
  autoscaler_schedule           = "rate(1 minute)"
  postproc_schedule             = "rate(15 minutes)"
  producer_reserved_concurrency = 1
}

settings = {
  log_level            = "DEBUG"
  dedupe_key_prefix    = "rnr:dev:product:"
  autoscaler_mode      = "direct"
  autoscaler_min_tasks = 0
  autoscaler_max_tasks = 2
}

log_retention_days = 14
alarm_emails       = []

alarms = {
  producer_period_seconds = 900
  producer_missed_periods = 4
}
