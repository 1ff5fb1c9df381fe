# Alarms to an SNS topic, and one dashboard:
#   failed scheduled invocations (SQS dead-letter queue not empty)
#   dead-lettered products (RabbitMQ rnr.products.dlq not empty, from the autoscaler)
#   worker errors (ERROR/CRITICAL log lines)
#   no successful producer run for N periods
#   oldest message in the work queue older than a threshold (from the autoscaler)

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_log_metric_filter" "worker_errors" {
  name           = "${var.name}-worker-errors"
  log_group_name = var.worker_log_group_name
  pattern        = "{ ($.level = \"ERROR\") || ($.level = \"CRITICAL\") }"

  metric_transformation {
    name          = "WorkerErrorLogLines"
    namespace     = var.metric_namespace
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

locals {
  notify = [aws_sns_topic.alarms.arn]

  # Alarms on one metric each; the producer's (metric math) follows below.
  metric_alarms = {
    failed-invocations = {
      description = "A scheduled run failed or could not be delivered: read the messages in SQS ${var.dead_letter_queue_name}."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = var.dead_letter_queue_name }
      statistic   = "Maximum"
      periods     = 1
      threshold   = 0
    }
    dead-lettered-products = {
      description = "Products are in rnr.products.dlq: see the README runbook, 'messages in rnr.products.dlq'."
      namespace   = var.metric_namespace
      metric      = "DeadLetterReady"
      dimensions  = { service = "autoscaler" }
      statistic   = "Maximum"
      periods     = 1
      threshold   = 0
    }
    worker-errors = {
      description = "The worker logged more than ${var.worker_error_threshold} ERROR/CRITICAL lines in 5 minutes: search its log group for level ERROR."
      namespace   = var.metric_namespace
      metric      = aws_cloudwatch_log_metric_filter.worker_errors.metric_transformation[0].name
      dimensions  = {}
      statistic   = "Sum"
      periods     = 1
      threshold   = var.worker_error_threshold
    }
    oldest-message-age = {
      description = "The oldest message in rnr.products waits more than ${var.oldest_message_age_threshold_seconds} s: workers are too few, stuck or failing."
      namespace   = var.metric_namespace
      metric      = "OldestMessageAgeSeconds"
      dimensions  = { service = "autoscaler" }
      statistic   = "Maximum"
      periods     = 2
      threshold   = var.oldest_message_age_threshold_seconds
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = each.value.periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.notify
  ok_actions          = local.notify

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "producer_not_succeeding" {
  alarm_name          = "${var.name}-producer-not-succeeding"
  alarm_description   = "No successful producer run for ${var.producer_missed_periods} periods of ${var.producer_period_seconds} s: new products are not being published."
  evaluation_periods  = var.producer_missed_periods
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  # No data at all means no run at all.
  treat_missing_data = "breaching"
  alarm_actions      = local.notify
  ok_actions         = local.notify

  metric_query {
    id          = "successes"
    expression  = "FILL(invocations, 0) - FILL(errors, 0)"
    label       = "Successful producer runs"
    return_data = true
  }

  metric_query {
    id = "invocations"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      dimensions  = { FunctionName = var.function_names["producer"] }
      period      = var.producer_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = var.function_names["producer"] }
      period      = var.producer_period_seconds
      stat        = "Sum"
    }
  }

  tags = var.tags
}

data "aws_region" "current" {}

locals {
  region = data.aws_region.current.region

  lambda_metric = { for key, name in var.function_names : key => ["AWS/Lambda", "Errors", "FunctionName", name] }

  widgets = [
    {
      title   = "Work queue (autoscaler)"
      metrics = [for name in ["QueueReady", "QueueUnacked", "DeadLetterReady", "BacklogPerTask", "OldestMessageAgeSeconds"] : [var.metric_namespace, name, "service", "autoscaler"]]
    },
    {
      title   = "Producer products"
      metrics = [for outcome in ["listed", "new", "published", "duplicate", "failed"] : [var.metric_namespace, outcome, "service", "producer"]]
    },
    {
      title   = "Lambda errors"
      metrics = values(local.lambda_metric)
    },
    {
      title   = "Lambda duration (p95)"
      metrics = [for name in values(var.function_names) : ["AWS/Lambda", "Duration", "FunctionName", name, { stat = "p95" }]]
    },
    {
      title   = "Worker tasks"
      metrics = [["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name], ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name]]
    },
    {
      title   = "Worker CPU and memory (%)"
      metrics = [["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name], ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name]]
    },
    {
      title   = "Worker error log lines"
      metrics = [[var.metric_namespace, "WorkerErrorLogLines"]]
    },
    {
      title   = "Broker"
      metrics = [["AWS/AmazonMQ", "MessageCount", "Broker", var.broker_name], ["AWS/AmazonMQ", "ConnectionCount", "Broker", var.broker_name], ["AWS/AmazonMQ", "SystemCpuUtilization", "Broker", var.broker_name, { yAxis = "right" }]]
    },
    {
      title   = "Failed invocations (SQS)"
      metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dead_letter_queue_name]]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      for index, widget in local.widgets : {
        type   = "metric"
        x      = (index % 2) * 12
        y      = floor(index / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = widget.title
          region  = local.region
          view    = "timeSeries"
          stacked = false
          period  = 300
          stat    = "Maximum"
          metrics = widget.metrics
        }
      }
    ]
  })
}
