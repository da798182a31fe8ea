"""vps: a control plane that serves the VPS.org Servers API."""

__version__ = "0.1.0"
