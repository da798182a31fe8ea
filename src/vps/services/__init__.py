"""Use cases. Each takes the caller's session (one transaction) and never commits."""
