output "role_arns" {
  description = "Role ARN per role: producer, autoscaler, postproc, ecs_task, ecs_task_execution, scheduler."
  value       = { for key, role in aws_iam_role.this : key => role.arn }
}

output "role_names" {
  description = "Role name per role, e.g. producer = \"rnr-dev-lambda-producer-role\"."
  value       = { for key, role in aws_iam_role.this : key => role.name }
}

output "s3_statements" {
  description = "The S3 statements of the pipeline's roles, with each role's ARN: the input of the storage module's bucket-policy hand-off."
  value = [
    for s in local.s3 : {
      sid       = s.sid
      role_arn  = aws_iam_role.this[s.role].arn
      actions   = s.actions
      resources = s.resources
      prefixes  = s.prefixes
    }
  ]
}

output "github_images_role_arn" {
  description = "Role images.yml assumes to push images (AWS_IMAGES_ROLE_ARN); null without github_repository."
  value       = try(aws_iam_role.github["images"].arn, null)
}

output "github_plan_role_arn" {
  description = "Role terraform.yml assumes to plan pull requests (AWS_PLAN_ROLE_ARN); null without github_repository."
  value       = try(aws_iam_role.github["plan"].arn, null)
}
