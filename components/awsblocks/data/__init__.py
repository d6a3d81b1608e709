"""Data: DynamoDB tables (`Table`) and private S3 buckets (`private_bucket`)."""
