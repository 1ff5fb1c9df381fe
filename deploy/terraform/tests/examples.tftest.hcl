# `terraform test -var-file=examples/<env>.tfvars` (from deploy/terraform): the whole
# configuration planned and applied against mocked providers, so every expression,
# for_each, validation and module wiring is evaluated without an AWS account.
# terraform.yml runs it for both examples; tests/static runs it where a provider
# mirror exists.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { region = "us-east-1" }
  }
  mock_data "aws_vpc" {
    defaults = { id = "vpc-0123456789abcdef0" }
  }
  mock_data "aws_subnets" {
    defaults = { ids = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"] }
  }
  # Roles and keys need policy JSON; the documents' content is checked by tests/static.
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mocked" }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = { arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mocked" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:us-east-1:123456789012:mocked" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:us-east-1:123456789012:function:mocked" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:us-east-1:123456789012:mocked" }
  }
  mock_resource "aws_ecs_cluster" {
    defaults = { arn = "arn:aws:ecs:us-east-1:123456789012:cluster/mocked" }
  }
  mock_resource "aws_ecs_task_definition" {
    defaults = { arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/mocked:1" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::mocked" }
  }
  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:us-east-1:123456789012:repository/mocked"
      repository_url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mocked"
    }
  }
}

mock_provider "random" {}

variables {
  image_tag = "0123456789abcdef0123456789abcdef01234567"
}

run "the_example_deploys" {
  command = apply

  assert {
    condition = (
      module.iam.role_names["producer"] == "${var.app}-${var.environment}-lambda-producer-role" &&
      module.iam.role_names["ecs_task"] == "${var.app}-${var.environment}-ecs-task-role" &&
      module.iam.role_names["postproc"] == "${var.app}-${var.environment}-lambda-postproc-role"
    )
    error_message = "The seed's role names: <app>-<env>-lambda-producer-role, -ecs-task-role, -lambda-postproc-role."
  }

  assert {
    condition     = toset(keys(module.functions.function_names)) == toset(["autoscaler", "postproc", "producer"])
    error_message = "The three scheduled functions are deployed."
  }

  assert {
    condition     = local.environment.producer["AUTOSCALER_FUNCTION_NAME"] == module.functions.function_names["autoscaler"]
    error_message = "The producer wakes the deployed autoscaler function (AUTOSCALER_FUNCTION_NAME)."
  }

  assert {
    condition     = module.compute.service_name == "${var.app}-${var.environment}-worker"
    error_message = "The worker service is named <app>-<env>-worker (the autoscaler's target)."
  }

  assert {
    condition     = var.settings.autoscaler_mode != "direct" || module.compute.scaling_policy_name == null
    error_message = "In direct mode the autoscaler alone sets the worker count."
  }

  assert {
    condition     = length(module.observability.alarm_names) == 7
    error_message = "Seven alarms: failed invocations, dead-lettered products, worker errors, oldest message age, post-processor quarantines, producer not succeeding, worker not ready."
  }
}

run "metric_mode_tracks_the_backlog_per_task" {
  command = plan

  variables {
    settings = { autoscaler_mode = "metric", autoscaler_min_tasks = 1, autoscaler_max_tasks = 6 }
  }

  assert {
    condition     = module.compute.scaling_policy_name == "${var.app}-${var.environment}-worker-backlog-per-task"
    error_message = "In metric mode Application Auto Scaling tracks BacklogPerTask."
  }
}

run "the_worker_needs_time_to_drain_within_its_stop_timeout" {
  command = plan

  variables {
    worker = { stop_timeout_seconds = 5 }
  }

  expect_failures = [var.worker]
}

run "the_environment_must_be_known" {
  command = plan

  variables {
    environment = "qa"
  }

  expect_failures = [var.environment]
}
