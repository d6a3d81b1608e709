"""Messaging: SNS topics, SQS queues with dead-letter queues, subscriptions, SES sender identities."""
