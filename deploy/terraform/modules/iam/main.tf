# Least-privilege roles of the pipeline. Every permission is in local.permissions, one
# list of statements per role; S3 access is limited to the bucket and the prefixes each
# role needs, secret reads to the one broker secret, ecs:UpdateService to the worker
# service. The role names follow the seed: <app>-<env>-lambda-producer-role,
# <app>-<env>-ecs-task-role, <app>-<env>-lambda-postproc-role.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.region

  hydrofabric = trim(var.hydrofabric_location, "/")
  # The prebuilt network index sits beside the hydrofabric, under <its parent>/index/
  # (rnr.storage.index_artifact_s3): the worker reads it, and uploads it where it had to
  # build it (`python -m rnr.ops index build` does the same from an operator's shell).
  hydrofabric_parts = split("/", local.hydrofabric)
  network_index     = join("/", concat(slice(local.hydrofabric_parts, 0, length(local.hydrofabric_parts) - 1), ["index"]))
  outputs           = trim(var.output_prefix, "/")
  postproc          = trim(var.postproc_prefix, "/")
  input_arn         = "arn:${local.partition}:s3:::${var.input_bucket_name}"
  output_arn        = "arn:${local.partition}:s3:::${var.output_bucket_name}"

  worker_service    = "arn:${local.partition}:ecs:${local.region}:${local.account}:service/${var.cluster_name}/${var.worker_service_name}"
  cluster_tasks     = "arn:${local.partition}:ecs:${local.region}:${local.account}:task/${var.cluster_name}/*"
  dead_letter_queue = "arn:${local.partition}:sqs:${local.region}:${local.account}:${var.dead_letter_queue_name}"
  worker_log_group  = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${var.worker_log_group_name}:*"
  function_arns     = { for key, name in var.function_names : key => "arn:${local.partition}:lambda:${local.region}:${local.account}:function:${name}" }
  repository_arns   = { for key, name in var.ecr_repository_names : key => "arn:${local.partition}:ecr:${local.region}:${local.account}:repository/${name}" }

  roles = {
    producer           = { name = "${var.name}-lambda-producer-role", service = "lambda.amazonaws.com", purpose = "producer Lambda" }
    autoscaler         = { name = "${var.name}-lambda-autoscaler-role", service = "lambda.amazonaws.com", purpose = "autoscaler Lambda" }
    postproc           = { name = "${var.name}-lambda-postproc-role", service = "lambda.amazonaws.com", purpose = "post-processor Lambda" }
    ecs_task           = { name = "${var.name}-ecs-task-role", service = "ecs-tasks.amazonaws.com", purpose = "worker containers" }
    ecs_task_execution = { name = "${var.name}-ecs-task-execution-role", service = "ecs-tasks.amazonaws.com", purpose = "ECS agent: image pull, logs, injected secrets" }
    scheduler          = { name = "${var.name}-scheduler-role", service = "scheduler.amazonaws.com", purpose = "EventBridge Scheduler: invoke the Lambdas" }
  }
  lambda_roles = ["producer", "autoscaler", "postproc"]

  # S3: the statements of the worker (ecs_task) and the post-processor. The same list,
  # with the roles as principals, is the bucket-policy hand-off of the storage module.
  s3 = [
    { role = "ecs_task", sid = "WorkerListHydrofabric", actions = ["s3:ListBucket"], resources = [local.input_arn], prefixes = [local.hydrofabric, "${local.hydrofabric}/*"] },
    { role = "ecs_task", sid = "WorkerReadHydrofabric", actions = ["s3:GetObject"], resources = ["${local.input_arn}/${local.hydrofabric}", "${local.input_arn}/${local.hydrofabric}/*"], prefixes = [] },
    { role = "ecs_task", sid = "WorkerListNetworkIndex", actions = ["s3:ListBucket"], resources = [local.input_arn], prefixes = [local.network_index, "${local.network_index}/*"] },
    { role = "ecs_task", sid = "WorkerReadWriteNetworkIndex", actions = ["s3:GetObject", "s3:PutObject"], resources = ["${local.input_arn}/${local.network_index}/*"], prefixes = [] },
    { role = "ecs_task", sid = "WorkerWriteOutputs", actions = ["s3:PutObject"], resources = ["${local.output_arn}/${local.outputs}/*"], prefixes = [] },
    { role = "postproc", sid = "PostprocListHydrofabric", actions = ["s3:ListBucket"], resources = [local.input_arn], prefixes = [local.hydrofabric, "${local.hydrofabric}/*"] },
    { role = "postproc", sid = "PostprocReadHydrofabric", actions = ["s3:GetObject"], resources = ["${local.input_arn}/${local.hydrofabric}", "${local.input_arn}/${local.hydrofabric}/*"], prefixes = [] },
    # Bucket-wide on purpose: without an unconditioned s3:ListBucket, S3 answers a GET
    # or HEAD of a missing key with 403 instead of 404, and the post-processor's first
    # run (no checkpoint, no table, no flowpath lookup yet) must see "not there".
    { role = "postproc", sid = "PostprocListOutputs", actions = ["s3:ListBucket"], resources = [local.output_arn], prefixes = [] },
    { role = "postproc", sid = "PostprocReadOutputs", actions = ["s3:GetObject"], resources = ["${local.output_arn}/${local.outputs}/*"], prefixes = [] },
    { role = "postproc", sid = "PostprocWriteTable", actions = ["s3:GetObject", "s3:PutObject"], resources = ["${local.output_arn}/${local.postproc}/*"], prefixes = [] },
  ]

  read_broker_secret = { sid = "ReadBrokerSecret", actions = ["secretsmanager:GetSecretValue"], resources = [var.broker_secret_arn] }
  use_stack_key      = { sid = "DecryptWithStackKey", actions = ["kms:Decrypt"], resources = [var.kms_key_arn] }
  use_bucket_keys    = { sid = "UseBucketKeys", actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = var.bucket_kms_key_arns }
  send_dead_letters  = { sid = "SendFailedInvocations", actions = ["sqs:SendMessage"], resources = [local.dead_letter_queue] }

  # Every permission of every role (S3 statements are added below).
  statements = {
    producer = [
      local.read_broker_secret,
      local.use_stack_key,
      local.send_dead_letters,
      # The wake after a run that published: the autoscaler function only. Its ARN is
      # built from its name, so this module does not depend on the functions module.
      { sid = "WakeTheAutoscaler", actions = ["lambda:InvokeFunction"], resources = [local.function_arns["autoscaler"]] },
    ]
    autoscaler = [
      local.read_broker_secret,
      local.use_stack_key,
      local.send_dead_letters,
      { sid = "ScaleTheWorkerService", actions = ["ecs:DescribeServices", "ecs:UpdateService"], resources = [local.worker_service] },
      { sid = "PublishPipelineMetrics", actions = ["cloudwatch:PutMetricData"], resources = ["*"], condition = { test = "StringEquals", variable = "cloudwatch:namespace", values = [var.metric_namespace] } },
    ]
    postproc = [local.use_stack_key, local.send_dead_letters, local.use_bucket_keys]
    ecs_task = [
      local.read_broker_secret,
      local.use_stack_key,
      local.use_bucket_keys,
      { sid = "ProtectOwnTaskWhileBusy", actions = ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"], resources = [local.cluster_tasks] },
    ]
    ecs_task_execution = [
      # GetAuthorizationToken has no resource-level permissions.
      { sid = "EcrLogin", actions = ["ecr:GetAuthorizationToken"], resources = ["*"] },
      { sid = "PullWorkerImage", actions = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], resources = [local.repository_arns["worker"]] },
      { sid = "WriteWorkerLogs", actions = ["logs:CreateLogStream", "logs:PutLogEvents"], resources = [local.worker_log_group] },
      # Only with secrets injected into the container (var.worker_secret_arns).
      { sid = "ReadInjectedSecrets", actions = ["secretsmanager:GetSecretValue"], resources = var.worker_secret_arns },
      { sid = "DecryptInjectedSecrets", actions = ["kms:Decrypt"], resources = length(var.worker_secret_arns) > 0 ? [var.kms_key_arn] : [] },
    ]
    scheduler = [
      { sid = "InvokeScheduledFunctions", actions = ["lambda:InvokeFunction"], resources = values(local.function_arns) },
      local.send_dead_letters,
      # The schedules are encrypted with the stack key.
      local.use_stack_key,
    ]
  }

  # Statements with an empty resource list (no bucket keys with SSE-S3, no injected
  # secrets) are dropped.
  policies = {
    for role, list in local.statements : role => concat(
      [for s in list : s if length(s.resources) > 0],
      [for s in local.s3 : { sid = s.sid, actions = s.actions, resources = s.resources, condition = length(s.prefixes) > 0 ? { test = "StringLike", variable = "s3:prefix", values = s.prefixes } : null } if s.role == role],
    )
  }
}

data "aws_iam_policy_document" "trust" {
  for_each = local.roles

  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = [each.value.service]
    }

    # ECS and EventBridge Scheduler say which account asks (confused-deputy guard).
    dynamic "condition" {
      for_each = each.value.service == "lambda.amazonaws.com" ? [] : [local.account]

      content {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name               = each.value.name
  description        = "rnr-pipeline ${var.name}: ${each.value.purpose}"
  assume_role_policy = data.aws_iam_policy_document.trust[each.key].json

  tags = var.tags
}

data "aws_iam_policy_document" "permissions" {
  for_each = local.policies

  dynamic "statement" {
    for_each = each.value

    content {
      sid       = statement.value.sid
      effect    = "Allow"
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = try(statement.value.condition, null) == null ? [] : [statement.value.condition]

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = local.policies

  name   = "${local.roles[each.key].name}-permissions"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.permissions[each.key].json
}

# Lambdas in a VPC: ENIs and their own log streams (AWS managed policy).
resource "aws_iam_role_policy_attachment" "lambda_vpc" {
  for_each = toset(local.lambda_roles)

  role       = aws_iam_role.this[each.value].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# ---------------------------------------------------------------------------------
# CI roles for GitHub Actions through OIDC (only with var.github_repository):
# images.yml on main pushes images; terraform.yml plans pull requests read-only.
# ---------------------------------------------------------------------------------

locals {
  github      = var.github_repository != null
  github_repo = local.github ? var.github_repository : "" # null cannot be interpolated
  github_host = "token.actions.githubusercontent.com"
  # Both roles, or none without var.github_repository.
  github_roles = {
    for key, role in {
      images = { name = "${var.name}-github-images-role", subject = "repo:${local.github_repo}:ref:refs/heads/main", purpose = "GitHub Actions: push images from main" }
      plan   = { name = "${var.name}-github-plan-role", subject = "repo:${local.github_repo}:pull_request", purpose = "GitHub Actions: terraform plan on pull requests" }
    } : key => role if local.github
  }
  github_provider_arn = var.github_oidc_provider_arn != null ? var.github_oidc_provider_arn : try(aws_iam_openid_connect_provider.github[0].arn, null)
}

resource "aws_iam_openid_connect_provider" "github" {
  count = local.github && var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://${local.github_host}"
  client_id_list = ["sts.amazonaws.com"]

  tags = var.tags
}

data "aws_iam_policy_document" "github_trust" {
  for_each = local.github_roles

  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_host}:sub"
      values   = [each.value.subject]
    }
  }
}

resource "aws_iam_role" "github" {
  for_each = local.github_roles

  name                 = each.value.name
  description          = "rnr-pipeline ${var.name}: ${each.value.purpose}"
  assume_role_policy   = data.aws_iam_policy_document.github_trust[each.key].json
  max_session_duration = 3600

  tags = var.tags
}

data "aws_iam_policy_document" "github_images" {
  count = local.github ? 1 : 0

  statement {
    sid       = "EcrLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "PushPipelineImages"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = values(local.repository_arns)
  }
}

resource "aws_iam_role_policy" "github_images" {
  count = local.github ? 1 : 0

  name   = "${local.github_roles["images"].name}-permissions"
  role   = aws_iam_role.github["images"].id
  policy = data.aws_iam_policy_document.github_images[0].json
}

# A plan reads every resource (AWS managed ReadOnlyAccess), the state, and the two
# secret values Terraform refreshes; it changes nothing.
resource "aws_iam_role_policy_attachment" "github_plan_read_only" {
  count = local.github ? 1 : 0

  role       = aws_iam_role.github["plan"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "github_plan" {
  count = local.github && var.terraform_state_bucket != null ? 1 : 0

  statement {
    sid       = "ReadState"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${var.terraform_state_bucket}", "arn:${local.partition}:s3:::${var.terraform_state_bucket}/*"]
  }

  statement {
    sid       = "RefreshManagedSecrets"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = var.managed_secret_arns
  }

  statement {
    sid       = "DecryptWithStackKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "github_plan" {
  count = local.github && var.terraform_state_bucket != null ? 1 : 0

  name   = "${local.github_roles["plan"].name}-permissions"
  role   = aws_iam_role.github["plan"].id
  policy = data.aws_iam_policy_document.github_plan[0].json
}
