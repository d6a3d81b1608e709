"""The payment chain's Lambda functions: one module per function, plus `lambdas.shared`."""
