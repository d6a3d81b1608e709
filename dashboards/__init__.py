"""CloudWatch dashboard and alarm definitions as pure functions returning JSON bodies."""
