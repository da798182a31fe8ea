"""`vps plans`, `vps os`, `vps locations`, and naming a plan or an OS by name."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from vps.cli.user.output import Column, as_json, show_list
from vps.cli.user.session import Invocation, api_command, fail
from vps.client import Client

PLAN_COLUMNS: list[Column] = [
    ("ID", lambda p: p["id"]),
    ("NAME", lambda p: p["name"]),
    ("VCPUS", lambda p: p["vcpus"]),
    ("MEMORY", lambda p: f"{p['memory']} MB"),
    ("STORAGE", lambda p: f"{p['storage']} GB"),
    ("BANDWIDTH", lambda p: f"{p.get('bandwidth', '-')} GB/mo"),
    ("PRICE/MO", lambda p: p.get("monthly_price")),
    ("BACKUPS/MO", lambda p: p.get("backups_monthly_price")),
]
OS_COLUMNS: list[Column] = [("ID", lambda o: o["id"]), ("NAME", lambda o: o["name"])]
LOCATION_COLUMNS: list[Column] = [
    ("CODE", lambda loc: loc["code"]),
    ("NAME", lambda loc: loc["name"]),
]


def _catalog_command(
    listing: Callable[[Client], Sequence[BaseModel]],
    columns: Sequence[Column],
    *,
    empty: str,
    summary: str,
) -> Callable[..., None]:
    """A command that shows one catalog list (`listing` reads it) as a table or JSON."""

    def command(call: Invocation) -> None:
        with call.client() as client:
            show_list(listing(client), call.output, columns, empty=empty)

    command.__doc__ = summary
    return api_command(command)


plans = _catalog_command(
    lambda client: client.plans.list(),
    PLAN_COLUMNS,
    empty="no plans offered",
    summary="The plans a server can be created with, and their monthly prices.",
)
operating_systems = _catalog_command(
    lambda client: client.operating_systems.list(),
    OS_COLUMNS,
    empty="no operating systems",
    summary="The operating systems a server can be created with.",
)
locations = _catalog_command(
    lambda client: client.locations.list(),
    LOCATION_COLUMNS,
    empty="no locations",
    summary="The datacenter locations a server can be created in.",
)


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[\s_\-/]+", text.strip().lower()) if word]


def choose(kind: str, wanted: str, choices: Sequence[BaseModel | dict[str, Any]]) -> int:
    """The id of the catalog entry `wanted` names: an id, a name in any case, or words that
    fit one entry only ("ubuntu-22.04" is "Ubuntu 22.04 LTS", "standard" is "Standard VPS").
    Anything else is an error that lists the choices."""
    rows = [as_json(choice) for choice in choices]
    listing = ", ".join(f"{row['id']} ({row['name']})" for row in rows) or "none"
    if wanted.strip().isdigit():
        wanted_id = int(wanted)
        if any(row["id"] == wanted_id for row in rows):
            return wanted_id
        raise fail(f"no {kind} with id {wanted_id}; choose one of: {listing}")
    exact = [row for row in rows if str(row["name"]).lower() == wanted.strip().lower()]
    if len(exact) == 1:
        return int(exact[0]["id"])
    words = _words(wanted)
    fitting = [row for row in rows if words and set(words) <= set(_words(str(row["name"])))]
    if len(fitting) == 1:
        return int(fitting[0]["id"])
    if fitting:
        names = ", ".join(f"{row['id']} ({row['name']})" for row in fitting)
        raise fail(f"{kind} {wanted!r} is ambiguous: it fits {names}; give the id")
    raise fail(f"unknown {kind} {wanted!r}; choose one of: {listing}")
