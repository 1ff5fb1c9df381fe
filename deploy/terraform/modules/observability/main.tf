# Alarms to an SNS topic (and, per alarm, any extra actions), and one dashboard
# (dashboard.tf):
#   failed scheduled invocations (SQS dead-letter queue not empty)
#   dead-lettered products (RabbitMQ rnr.products.dlq not empty, from the autoscaler)
#   worker errors (ERROR/CRITICAL log lines)
#   no successful producer run for N periods
#   oldest message in the work queue older than a threshold (from the autoscaler)
#   worker not ready: tasks run but none consumes (the worker's EMF metrics)
#   post-processor quarantines (a forecast file it could not take in)

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
  # The topic, then what extra_alarm_actions adds for one alarm (e.g. a paging topic).
  alarm_keys = concat(keys(local.metric_alarms), ["producer-not-succeeding", "worker-not-ready"])
  actions    = { for key in local.alarm_keys : key => concat(local.notify, lookup(var.extra_alarm_actions, key, [])) }

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
    postproc-quarantines = {
      description = "The post-processor quarantined a forecast file it could not take in: read {POSTPROC_PREFIX}/quarantine/<key>.reason.json (README runbook, 'post-processor result has quarantined > 0')."
      namespace   = var.metric_namespace
      metric      = "ObjectsQuarantined"
      dimensions  = { service = "postproc" }
      statistic   = "Sum"
      periods     = 1
      threshold   = 0
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
  alarm_actions       = local.actions[each.key]
  ok_actions          = local.actions[each.key]

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
  alarm_actions      = local.actions["producer-not-succeeding"]
  ok_actions         = local.actions["producer-not-succeeding"]

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

# Tasks are running but for worker_not_ready_periods periods none reported its consumer
# active (rnr_worker_consumer_active, from the worker's EMF lines). Gated on Container
# Insights' RunningTaskCount, so a service scaled to zero is not "not ready", and a
# task that dies before its first flush (no data at all) is.
resource "aws_cloudwatch_metric_alarm" "worker_not_ready" {
  alarm_name          = "${var.name}-worker-not-ready"
  alarm_description   = "Worker tasks are running but none has consumed from RabbitMQ for ${var.worker_not_ready_periods * 5} minutes: see the README runbook, 'worker /readyz 503'."
  evaluation_periods  = var.worker_not_ready_periods
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions["worker-not-ready"]
  ok_actions          = local.actions["worker-not-ready"]

  metric_query {
    id          = "ready"
    expression  = "IF(FILL(running, 0) > 0, FILL(consuming, 0), 1)"
    label       = "A worker consumes while tasks run (1 = yes)"
    return_data = true
  }

  metric_query {
    id = "consuming"

    metric {
      namespace   = var.metric_namespace
      metric_name = "rnr_worker_consumer_active"
      dimensions  = { service = "worker" }
      period      = 300
      stat        = "Maximum"
    }
  }

  metric_query {
    id = "running"

    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      dimensions  = { ClusterName = var.cluster_name, ServiceName = var.worker_service_name }
      period      = 300
      stat        = "Maximum"
    }
  }

  tags = var.tags
}
