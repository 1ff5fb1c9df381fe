# The three scheduled services as Lambda container images in the VPC, their log
# groups, and their EventBridge Scheduler schedules with a retry policy and a
# dead-letter queue. A run that fails is not retried by Lambda (the next scheduled run
# does the same work); it lands in the dead-letter queue, which raises an alarm.

# Keys and names only: the environments hold secrets (REDIS_URL), which must not
# decide for_each.
locals {
  function_names = { for key, function in var.functions : key => function.function_name }
}

resource "aws_sqs_queue" "dead_letters" {
  name                      = var.dead_letter_queue_name
  message_retention_seconds = 1209600 # 14 days, the SQS maximum
  sqs_managed_sse_enabled   = true

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is chosen per environment (log_retention_days: 14 in the dev example, 365 in prod).
  for_each = local.function_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_272:Code signing applies to .zip packages; these are container images from immutable, scanned, commit-tagged ECR repositories.
  #checkov:skip=CKV_AWS_50:No X-Ray: runs are traced by correlation ids in JSON logs and Embedded Metric Format metrics.
  for_each = local.function_names

  function_name                  = var.functions[each.key].function_name
  description                    = "rnr-pipeline ${var.name} ${each.key}"
  package_type                   = "Image"
  image_uri                      = var.functions[each.key].image_uri
  architectures                  = [var.architecture]
  role                           = var.functions[each.key].role_arn
  memory_size                    = var.functions[each.key].memory_mb
  timeout                        = var.functions[each.key].timeout_seconds
  reserved_concurrent_executions = var.functions[each.key].reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  image_config {
    command = var.functions[each.key].command
  }

  environment {
    variables = var.functions[each.key].environment
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [var.security_group_id]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letters.arn
  }

  depends_on = [aws_cloudwatch_log_group.this]

  tags = var.tags
}

resource "aws_lambda_function_event_invoke_config" "this" {
  for_each = local.function_names

  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 300
}

resource "aws_scheduler_schedule_group" "this" {
  name = var.name

  tags = var.tags
}

resource "aws_scheduler_schedule" "this" {
  for_each = local.function_names

  name                         = each.value
  group_name                   = aws_scheduler_schedule_group.this.name
  description                  = "Invokes ${each.value}"
  schedule_expression          = var.functions[each.key].schedule_expression
  schedule_expression_timezone = "UTC"
  state                        = "ENABLED"
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this[each.key].arn
    role_arn = var.scheduler_role_arn
    input    = jsonencode({ source = "eventbridge-scheduler", schedule = each.value })

    retry_policy {
      maximum_event_age_in_seconds = var.retry_policy.maximum_event_age_seconds
      maximum_retry_attempts       = var.retry_policy.maximum_retry_attempts
    }

    dead_letter_config {
      arn = aws_sqs_queue.dead_letters.arn
    }
  }
}
