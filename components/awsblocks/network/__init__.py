"""Network: a VPC with stable subnet CIDRs, an explicit NAT choice, flow logs and private endpoints."""
