"""The HTTP layer: parse, authenticate, call one service, shape the response."""
