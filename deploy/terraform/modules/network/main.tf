# Security groups for the pipeline inside an existing VPC. Ingress only from the groups
# that need it; egress only to the ports each component uses.
#
#   worker  -> broker 5671 (AMQPS); 443 anywhere (S3, Secrets Manager, NOAA APIs via NAT)
#   lambda  -> broker 5671 and 443 (management API), cache 6379; 443 anywhere
#   broker  <- worker, lambda; no egress
#   cache   <- lambda; no egress

data "aws_vpc" "this" {
  id   = var.vpc_id
  tags = var.vpc_id == null ? { Name = var.vpc_name } : null
}

data "aws_subnets" "private" {
  count = length(var.private_subnet_ids) == 0 ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.this.id]
  }

  filter {
    name   = "tag:Name"
    values = var.private_subnet_name_patterns
  }
}

locals {
  private_subnet_ids = length(var.private_subnet_ids) > 0 ? var.private_subnet_ids : sort(data.aws_subnets.private[0].ids)

  groups = {
    worker = "ECS Fargate worker tasks"
    lambda = "producer, autoscaler and postproc Lambdas"
    broker = "Amazon MQ for RabbitMQ broker"
    cache  = "ElastiCache Redis (producer dedupe)"
  }

  # Who may reach the broker and the cache, on which port.
  ingress = {
    worker_to_broker_amqps = { to = "broker", from = "worker", port = 5671, why = "AMQPS from the worker" }
    lambda_to_broker_amqps = { to = "broker", from = "lambda", port = 5671, why = "AMQPS from the Lambdas" }
    lambda_to_broker_https = { to = "broker", from = "lambda", port = 443, why = "RabbitMQ management API from the autoscaler" }
    lambda_to_cache_redis  = { to = "cache", from = "lambda", port = 6379, why = "Redis (TLS) from the producer" }
  }

  # Egress to the groups above (the mirror of ingress) and HTTPS to anywhere.
  egress_https_anywhere = {
    worker = "HTTPS: S3, Secrets Manager, ECS, weather.gov and NWPS"
    lambda = "HTTPS: S3, Secrets Manager, ECS, CloudWatch, weather.gov"
  }
}

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:Attached in the messaging, cache, compute and functions modules through this module's outputs, which the graph check does not follow.
  for_each = local.groups

  name        = "${var.name}-${each.key}"
  description = "rnr-pipeline ${each.value}"
  vpc_id      = data.aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = local.ingress

  security_group_id            = aws_security_group.this[each.value.to].id
  referenced_security_group_id = aws_security_group.this[each.value.from].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  description                  = each.value.why

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "to_group" {
  for_each = local.ingress

  security_group_id            = aws_security_group.this[each.value.from].id
  referenced_security_group_id = aws_security_group.this[each.value.to].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  description                  = each.value.why

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "https_anywhere" {
  for_each = local.egress_https_anywhere

  security_group_id = aws_security_group.this[each.key].id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = each.value

  tags = var.tags
}
