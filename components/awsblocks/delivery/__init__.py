"""Delivery: a container pipeline (CodePipeline → CodeBuild → ECR → ECS deploy)."""
