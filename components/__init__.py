"""Reusable, product-agnostic Pulumi components (type tokens `crowdfunding:<module>:<Name>`)."""
