terraform {
  # 1.10+ for S3-native state locking (use_lockfile); CI and the runbook use 1.11.
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }

  # Partial configuration: the bucket, key and region come from a backend file,
  # e.g. `terraform init -backend-config=examples/backend-dev.s3.tfbackend`.
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Application = var.app
        Environment = var.environment
        ManagedBy   = "terraform"
        Source      = "rnr-pipeline/deploy/terraform"
      },
      var.tags,
    )
  }
}
