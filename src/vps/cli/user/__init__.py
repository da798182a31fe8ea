"""The user commands of `vps`: log in, then manage servers, SSH keys and the account
through the API (the SDK `vps.client`), never through the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vps.cli.user.account import account
from vps.cli.user.catalog import locations, operating_systems, plans
from vps.cli.user.keys import ssh_keys_app
from vps.cli.user.profiles import login, logout, profiles
from vps.cli.user.servers import servers_app

#: Top-level commands, by name, for `app.command(name)(function)`.
USER_COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("login", login),
    ("logout", logout),
    ("profiles", profiles),
    ("plans", plans),
    ("os", operating_systems),
    ("locations", locations),
    ("account", account),
]

__all__ = ["USER_COMMANDS", "servers_app", "ssh_keys_app"]
