# The worker on ECS Fargate: a cluster with Container Insights and the FARGATE and
# FARGATE_SPOT capacity providers, the task definition, and the service in private
# subnets with the deployment circuit breaker. The autoscaler sets the desired count.

resource "aws_ecs_cluster" "this" {
  name = var.cluster_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = var.capacity.fargate_base
    weight            = var.capacity.fargate_weight
  }

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE_SPOT"
    weight            = var.capacity.spot_weight
  }
}

resource "aws_cloudwatch_log_group" "worker" {
  #checkov:skip=CKV_AWS_338:Retention is chosen per environment (log_retention_days: 14 in the dev example, 365 in prod); routed outputs, not logs, are the record.
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

data "aws_region" "current" {}

locals {
  # The image's own HEALTHCHECK, for ECS: ready only while the consumer is active.
  readiness_probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.container_port}/readyz', timeout=4)"

  container = {
    name        = "worker"
    image       = var.image
    essential   = true
    stopTimeout = var.stop_timeout_seconds
    # The image's CMD, repeated so the task does not depend on the image default.
    command = ["python", "-m", "services.worker"]
    user    = "10001:10001"

    portMappings = [{ containerPort = var.container_port, protocol = "tcp" }]

    environment = [for name in sort(keys(var.environment)) : { name = name, value = var.environment[name] }]
    secrets     = [for name in sort(keys(var.secrets)) : { name = name, valueFrom = var.secrets[name] }]

    healthCheck = {
      command     = ["CMD", "python", "-c", local.readiness_probe]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }

    linuxParameters = { initProcessEnabled = true }

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.worker.name
        awslogs-region        = data.aws_region.current.region
        awslogs-stream-prefix = "worker"
      }
    }
  }
}

resource "aws_ecs_task_definition" "worker" {
  #checkov:skip=CKV_AWS_336:The worker writes its hydrofabric copy and numba cache under /tmp (task ephemeral storage); a read-only root would need a writable volume the non-root user owns.
  family                   = var.service_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = var.task_role_arn
  execution_role_arn       = var.execution_role_arn
  container_definitions    = jsonencode([local.container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }

  tags = var.tags
}

resource "aws_ecs_service" "worker" {
  name                   = var.service_name
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.worker.arn
  desired_count          = var.desired_count
  platform_version       = "LATEST"
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  # At most one extra task during a deployment; never below the running count.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = var.capacity.fargate_base
    weight            = var.capacity.fargate_weight
  }

  capacity_provider_strategy {
    capacity_provider = "FARGATE_SPOT"
    weight            = var.capacity.spot_weight
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_id]
    assign_public_ip = false
  }

  # The autoscaler owns the running count.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.this]

  tags = var.tags
}

# `metric` mode: the autoscaler publishes BacklogPerTask (dimensions ClusterName,
# ServiceName) and Application Auto Scaling tracks it. In `direct` mode there is none of
# this: the autoscaler sets the desired count itself.
resource "aws_appautoscaling_target" "worker" {
  count = var.target_tracking == null ? 0 : 1

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  min_capacity       = var.target_tracking.min_tasks
  max_capacity       = var.target_tracking.max_tasks

  tags = var.tags
}

resource "aws_appautoscaling_policy" "backlog_per_task" {
  count = var.target_tracking == null ? 0 : 1

  name               = "${var.service_name}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.worker[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.worker[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.target_tracking.target_value
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    customized_metric_specification {
      namespace   = var.target_tracking.metric_namespace
      metric_name = "BacklogPerTask"
      statistic   = "Average"

      dimensions {
        name  = "ClusterName"
        value = aws_ecs_cluster.this.name
      }

      dimensions {
        name  = "ServiceName"
        value = aws_ecs_service.worker.name
      }
    }
  }
}
