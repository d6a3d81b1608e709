"""Web: a Fargate service behind an HTTPS load balancer with WAF (`WebService`), and its build context."""
