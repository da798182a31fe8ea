"""The `vps` command: run the service and administer it."""
