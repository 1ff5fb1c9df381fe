variable "name" {
  description = "Prefix of the repository names, e.g. \"rnr-dev\": repositories are <name>/<image>."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "images" {
  description = "Images to keep, one repository each (the Dockerfile targets)."
  type        = list(string)
  default     = ["worker", "producer", "autoscaler", "postproc"]
  nullable    = false

  validation {
    condition     = length(var.images) > 0 && alltrue([for image in var.images : can(regex("^[a-z][a-z0-9-]*$", image))])
    error_message = "Give at least one image name of lowercase letters, digits and hyphens."
  }
}

variable "lambda_images" {
  description = "Images that Lambda pulls (their repositories allow the Lambda service to read them)."
  type        = list(string)
  default     = ["producer", "autoscaler", "postproc"]
  nullable    = false
}

variable "keep_tagged_images" {
  description = "How many commit-tagged images each repository keeps (older ones expire; keep enough to roll back)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.keep_tagged_images >= 5
    error_message = "Keep at least 5 images so a rollback target stays available."
  }
}

variable "untagged_expiry_days" {
  description = "Days after which untagged images (interrupted pushes) expire."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.untagged_expiry_days >= 1
    error_message = "untagged_expiry_days must be at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the images."
  type        = string
  nullable    = false
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false
}
