# Amazon MQ for RabbitMQ, private, general logs to CloudWatch, with the service
# credentials generated here and kept in Secrets Manager as {"username","password"}
# (what RABBITMQ_SECRET_ARN points the services at).

# Amazon MQ accepts 12-250 characters without , : = ; letters and digits only keep it
# safe in any client URL too.
resource "random_password" "broker" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "broker" {
  #checkov:skip=CKV2_AWS_57:Amazon MQ for RabbitMQ has no managed rotation; rotation is the runbook's manual procedure (deploy/README.md), and the services re-read the secret after an authentication failure.
  name                    = "${var.name}/rabbitmq"
  description             = "RabbitMQ credentials of the ${var.name} pipeline services"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "broker" {
  secret_id = aws_secretsmanager_secret.broker.id
  secret_string = jsonencode({
    username = var.username
    password = random_password.broker.result
  })

  # A password rotated by hand (runbook) must not be put back by the next apply.
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_mq_broker" "this" {
  #checkov:skip=CKV_AWS_209:Amazon MQ for RabbitMQ encrypts at rest with an AWS owned key; customer managed keys apply to ActiveMQ brokers.
  #checkov:skip=CKV_AWS_197:Audit logs exist only for ActiveMQ; RabbitMQ publishes general logs, which are on.
  broker_name                = var.name
  engine_type                = "RabbitMQ"
  engine_version             = var.engine_version
  host_instance_type         = var.instance_type
  deployment_mode            = var.deployment_mode
  publicly_accessible        = false
  auto_minor_version_upgrade = true
  apply_immediately          = var.apply_immediately
  subnet_ids                 = var.deployment_mode == "SINGLE_INSTANCE" ? [var.subnet_ids[0]] : var.subnet_ids
  security_groups            = [var.security_group_id]

  logs {
    general = true
  }

  maintenance_window_start_time {
    day_of_week = var.maintenance_window.day_of_week
    time_of_day = var.maintenance_window.time_of_day
    time_zone   = "UTC"
  }

  # Amazon MQ does not read RabbitMQ users back: a changed password here is not applied
  # to a running broker (see the runbook for rotation).
  user {
    username = var.username
    password = random_password.broker.result
  }

  tags = var.tags
}
