output "repository_urls" {
  description = "Repository URL per image, e.g. { worker = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/rnr-dev/worker\" }."
  value       = { for image, repository in aws_ecr_repository.this : image => repository.repository_url }
}

output "repository_arns" {
  description = "Repository ARN per image."
  value       = { for image, repository in aws_ecr_repository.this : image => repository.arn }
}

output "registry_url" {
  description = "The account's registry host, for docker login."
  value       = split("/", values(aws_ecr_repository.this)[0].repository_url)[0]
}

output "repository_names" {
  description = "Repository name per image, e.g. { worker = \"rnr-dev/worker\" }."
  value       = { for image, repository in aws_ecr_repository.this : image => repository.name }
}
