# The pipeline's CloudWatch dashboard: the local Grafana dashboard's panels (same titles,
# devstack/observability/grafana/dashboards/rnr-pipeline.json), then AWS's own views of
# the Lambdas, the worker tasks and the broker.
#
# Sources: the EMF lines the services print (namespace var.metric_namespace, dimension
# service): the Lambdas' per-run figures (rnr/core/metrics.py) and the worker's
# Prometheus registry, exported under its Prometheus names every minute
# (rnr/core/emf_export.py: counters as increases, histograms as _count/_sum increases
# and values CloudWatch takes percentiles of); AWS/AmazonMQ broker-wide counts (Amazon MQ
# publishes no per-queue metrics for RabbitMQ 4); Container Insights' task counts.
#
# Every metric is written out, not generated, so that tests/static can check each name
# and dimension against what the code emits.

data "aws_region" "current" {}

locals {
  region               = data.aws_region.current.region
  autoscaler_log_group = var.function_log_group_names["autoscaler"]

  # Worker metrics by outcome (and reason): one series per dimension value found.
  worker_messages_search = "SEARCH('{\"${var.metric_namespace}\",outcome,service} service=\"worker\" MetricName=\"rnr_worker_messages_total\"', 'Sum', 300)"
  worker_gauges_search   = "SEARCH('{\"${var.metric_namespace}\",outcome,reason,service} service=\"worker\" MetricName=\"rnr_worker_gauges_total\"', 'Sum', 300)"

  metric_widgets = [
    {
      title = "Products per 5 min: listed / new / duplicate / published"
      stat  = "Sum"
      metrics = [
        [var.metric_namespace, "listed", "service", "producer"],
        [var.metric_namespace, "new", "service", "producer"],
        [var.metric_namespace, "duplicate", "service", "producer"],
        [var.metric_namespace, "published", "service", "producer"],
      ]
    },
    {
      title = "Work queue: ready and unacked"
      stat  = "Maximum"
      metrics = [
        [var.metric_namespace, "QueueReady", "service", "autoscaler", { label = "ready (work queue)" }],
        [var.metric_namespace, "QueueUnacked", "service", "autoscaler", { label = "unacked (work queue)" }],
        ["AWS/AmazonMQ", "MessageReadyCount", "Broker", var.broker_name, { label = "ready (all queues, broker)" }],
        ["AWS/AmazonMQ", "MessageUnacknowledgedCount", "Broker", var.broker_name, { label = "unacked (all queues, broker)" }],
      ]
    },
    {
      title = "Dead-letter queue depth"
      stat  = "Maximum"
      metrics = [
        [var.metric_namespace, "DeadLetterReady", "service", "autoscaler", { label = "ready" }],
        [var.metric_namespace, "DeadLetterUnacked", "service", "autoscaler", { label = "unacked" }],
      ]
    },
    {
      title = "Oldest ready message age (upper estimate)"
      stat  = "Maximum"
      metrics = [
        [var.metric_namespace, "OldestMessageAgeSeconds", "service", "autoscaler", { label = "seconds" }],
      ]
    },
    {
      title = "Worker messages by outcome"
      stat  = "Sum"
      metrics = [
        [{ expression = local.worker_messages_search, id = "messages", label = "" }],
      ]
    },
    {
      title = "Worker gauge outcomes by reason"
      stat  = "Sum"
      metrics = [
        [{ expression = local.worker_gauges_search, id = "gauges", label = "" }],
      ]
    },
    {
      title = "Routing latency per gauge"
      stat  = "p50"
      metrics = [
        [var.metric_namespace, "rnr_worker_routing_seconds", "service", "worker", { stat = "p50", label = "p50" }],
        [var.metric_namespace, "rnr_worker_routing_seconds", "service", "worker", { stat = "p90", label = "p90" }],
        [var.metric_namespace, "rnr_worker_routing_seconds", "service", "worker", { stat = "p99", label = "p99" }],
        [{ expression = "routing_sum / routing_count", id = "routing_mean", label = "mean" }],
        [var.metric_namespace, "rnr_worker_routing_seconds_sum", "service", "worker", { stat = "Sum", id = "routing_sum", visible = false }],
        [var.metric_namespace, "rnr_worker_routing_seconds_count", "service", "worker", { stat = "Sum", id = "routing_count", visible = false }],
      ]
    },
    {
      title = "Whole-message latency, delivery to settlement"
      stat  = "p50"
      metrics = [
        [var.metric_namespace, "rnr_worker_processing_seconds", "service", "worker", { stat = "p50", label = "p50" }],
        [var.metric_namespace, "rnr_worker_processing_seconds", "service", "worker", { stat = "p90", label = "p90" }],
        [var.metric_namespace, "rnr_worker_processing_seconds", "service", "worker", { stat = "p99", label = "p99" }],
        [{ expression = "message_sum / message_count", id = "message_mean", label = "mean" }],
        [var.metric_namespace, "rnr_worker_processing_seconds_sum", "service", "worker", { stat = "Sum", id = "message_sum", visible = false }],
        [var.metric_namespace, "rnr_worker_processing_seconds_count", "service", "worker", { stat = "Sum", id = "message_count", visible = false }],
      ]
    },
    {
      title = "Latency p50 / p95: routing and whole message"
      stat  = "p50"
      metrics = [
        [var.metric_namespace, "rnr_worker_routing_seconds", "service", "worker", { stat = "p50", label = "routing p50" }],
        [var.metric_namespace, "rnr_worker_routing_seconds", "service", "worker", { stat = "p95", label = "routing p95" }],
        [var.metric_namespace, "rnr_worker_processing_seconds", "service", "worker", { stat = "p50", label = "whole message p50" }],
        [var.metric_namespace, "rnr_worker_processing_seconds", "service", "worker", { stat = "p95", label = "whole message p95" }],
      ]
    },
    {
      # Each task flushes once a minute: a 1-minute Sum adds the tasks up.
      title  = "Worker consumer active and messages in flight"
      stat   = "Sum"
      period = 60
      metrics = [
        [var.metric_namespace, "rnr_worker_consumer_active", "service", "worker", { label = "tasks consuming" }],
        [var.metric_namespace, "rnr_worker_in_flight_messages", "service", "worker", { label = "messages in flight" }],
      ]
    },
    {
      title = "Autoscaler: desired vs running tasks"
      stat  = "Maximum"
      metrics = [
        [var.metric_namespace, "DesiredTasks", "service", "autoscaler", { label = "desired (autoscaler's decision)" }],
        [var.metric_namespace, "RunningTasks", "service", "autoscaler", { label = "running (autoscaler's view)" }],
        ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name, { label = "desired (ECS)" }],
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name, { label = "running (ECS)" }],
      ]
    },
    {
      title = "Inherited-forecast table rows"
      stat  = "Maximum"
      metrics = [
        [var.metric_namespace, "TableRows", "service", "postproc", { label = "rows" }],
      ]
    },
    {
      title = "Forecast files taken in, by outcome"
      stat  = "Sum"
      metrics = [
        [var.metric_namespace, "ObjectsProcessed", "service", "postproc", { label = "processed" }],
        [var.metric_namespace, "ObjectsQuarantined", "service", "postproc", { label = "quarantined" }],
        [var.metric_namespace, "ObjectsDeferred", "service", "postproc", { label = "deferred to a later run" }],
      ]
    },
    {
      title = "Rows withdrawn (gauge no longer flooding)"
      stat  = "Sum"
      metrics = [
        [var.metric_namespace, "RowsWithdrawn", "service", "postproc", { label = "withdrawn" }],
      ]
    },
    {
      title = "Lambda errors"
      stat  = "Sum"
      metrics = [
        ["AWS/Lambda", "Errors", "FunctionName", var.function_names["producer"], { label = "producer" }],
        ["AWS/Lambda", "Errors", "FunctionName", var.function_names["autoscaler"], { label = "autoscaler" }],
        ["AWS/Lambda", "Errors", "FunctionName", var.function_names["postproc"], { label = "postproc" }],
      ]
    },
    {
      title = "Lambda duration (p95)"
      stat  = "p95"
      metrics = [
        ["AWS/Lambda", "Duration", "FunctionName", var.function_names["producer"], { label = "producer" }],
        ["AWS/Lambda", "Duration", "FunctionName", var.function_names["autoscaler"], { label = "autoscaler" }],
        ["AWS/Lambda", "Duration", "FunctionName", var.function_names["postproc"], { label = "postproc" }],
      ]
    },
    {
      title = "Worker CPU and memory (%)"
      stat  = "Maximum"
      metrics = [
        ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name],
        ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name],
      ]
    },
    {
      title = "Worker error log lines"
      stat  = "Sum"
      metrics = [
        [var.metric_namespace, aws_cloudwatch_log_metric_filter.worker_errors.metric_transformation[0].name],
      ]
    },
    {
      title = "Broker"
      stat  = "Maximum"
      metrics = [
        ["AWS/AmazonMQ", "MessageCount", "Broker", var.broker_name],
        ["AWS/AmazonMQ", "ConnectionCount", "Broker", var.broker_name],
        ["AWS/AmazonMQ", "ConsumerCount", "Broker", var.broker_name],
        ["AWS/AmazonMQ", "SystemCpuUtilization", "Broker", var.broker_name, { yAxis = "right" }],
      ]
    },
    {
      title = "Failed invocations (SQS)"
      stat  = "Maximum"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dead_letter_queue_name],
      ]
    },
  ]

  # Logs Insights over the autoscaler's decision records ("autoscaling decision" lines).
  log_widgets = [
    {
      title = "Autoscaler decisions by rule"
      query = "SOURCE '${local.autoscaler_log_group}' | filter message = \"autoscaling decision\" | stats count(*) as runs by rule | sort runs desc"
    },
    {
      title = "Autoscaler: latest decisions"
      query = "SOURCE '${local.autoscaler_log_group}' | filter message = \"autoscaling decision\" | fields @timestamp, rule, action, old_count, new_count, ready, unacked, running, dead_letter_ready | sort @timestamp desc | limit 20"
    },
  ]

  metric_rows = ceil(length(local.metric_widgets) / 2)
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat(
      [
        for index, widget in local.metric_widgets : {
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
            period  = try(widget.period, 300)
            stat    = widget.stat
            metrics = widget.metrics
          }
        }
      ],
      [
        for index, widget in local.log_widgets : {
          type   = "log"
          x      = 0
          y      = (local.metric_rows + index) * 6
          width  = 24
          height = 6
          properties = {
            title  = widget.title
            region = local.region
            view   = "table"
            query  = widget.query
          }
        }
      ],
    )
  })
}
