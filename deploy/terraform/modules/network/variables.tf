variable "name" {
  description = "Prefix of every name in this module, e.g. \"rnr-dev\"."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "Id of the existing VPC. Give this or vpc_name."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "vpc_name" {
  description = "Name tag of the existing VPC, looked up when vpc_id is null."
  type        = string
  default     = null

  validation {
    condition     = (var.vpc_id == null) != (var.vpc_name == null)
    error_message = "Give exactly one of vpc_id and vpc_name."
  }
}

variable "private_subnet_ids" {
  description = "Ids of the private subnets (with a route to a NAT gateway) for the worker, the Lambdas, the broker and the cache. Empty: look them up by private_subnet_name_patterns."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for id in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "Every private subnet id must look like subnet-0123456789abcdef0."
  }
}

variable "private_subnet_name_patterns" {
  description = "Name-tag patterns (wildcards allowed) of the private subnets, used when private_subnet_ids is empty."
  type        = list(string)
  default     = ["*private*"]
  nullable    = false

  validation {
    condition     = length(var.private_subnet_name_patterns) > 0
    error_message = "Give at least one Name pattern."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false
}
