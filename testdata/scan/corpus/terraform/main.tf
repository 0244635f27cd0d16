terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region     = "eu-west-1"
  access_key = "AKIAPZTJDRWBZNT7CJJP"
  secret_key = "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"
}

provider "digitalocean" {
  token = "dop_v1_0a4ca7310c39a8e7b76fa7855786f35b5d4322d87addf5e98e5fe555effa5d7d"
}

variable "db_password" {
  type      = string
  sensitive = true
}

resource "aws_db_instance" "orders" {
  identifier = "orders"
  password   = var.db_password
  kms_key_id = "arn:aws:kms:eu-west-1:916709533058:key/f1201718-825d-400f-ae48-6b686c9d3c75"
}
