"""vps: a control plane that serves the VPS.org Servers API.

`from vps import Client, AsyncClient` gives the Python SDK (`vps.client`); it is imported
on first use only, so the server, which imports `vps`, does not load httpx for nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from vps.client import AsyncClient, Client

_LAZY_EXPORTS = {"Client", "AsyncClient"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        import vps.client

        return getattr(vps.client, name)
    raise AttributeError(f"module 'vps' has no attribute {name!r}")
