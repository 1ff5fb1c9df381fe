output "input_bucket_name" {
  description = "INPUT_BUCKET: the bucket holding the hydrofabric."
  value       = var.input_bucket_name
}

output "output_bucket_name" {
  description = "OUTPUT_BUCKET: the bucket of the forecasts and the post-processed table."
  value       = var.output_bucket_name
}

output "bucket_arns" {
  description = "ARNs of the pipeline's buckets (one when input and output are the same bucket)."
  value       = [for name in local.bucket_names : "arn:${data.aws_partition.current.partition}:s3:::${name}"]
}

output "created_bucket_names" {
  description = "Buckets this module created (empty when existing buckets are used)."
  value       = [for bucket in aws_s3_bucket.this : bucket.id]
}

output "bucket_policy_statements" {
  description = "Bucket-policy JSON (Version and Statement) granting the pipeline's roles what they need; the owner of existing buckets merges its statements into their bucket policy."
  value       = data.aws_iam_policy_document.handoff.json
}
