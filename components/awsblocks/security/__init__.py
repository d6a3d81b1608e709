"""Security: customer-managed KMS keys (`EncryptionKey`, `key_arn_or_own`) and IAM grants (`iam`)."""
