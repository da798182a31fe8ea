"""The loop that drives servers toward the status their owners asked for."""
