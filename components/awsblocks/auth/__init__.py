"""Auth: a Cognito user pool and app client whose JWTs an API verifies (`UserPool`)."""
