"""What each mutating endpoint means in the audit log: an action name and its target."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.routing import APIRoute

from vps.services.audit import Mutation


@dataclass(frozen=True)
class Audited:
    action: str
    target_type: str
    # The path parameter that names the target (None for a create: the new id is set by
    # the route).
    target_parameter: str | None


# Route function name -> its meaning. `tests` check that every mutating route is here.
AUDITED: dict[str, Audited] = {
    "create_server": Audited("server.create", "server", None),
    "replace_server": Audited("server.replace", "server", "server_id"),
    "update_server": Audited("server.update", "server", "server_id"),
    "delete_server": Audited("server.delete", "server", "server_id"),
    "start_server": Audited("server.start", "server", "server_id"),
    "stop_server": Audited("server.stop", "server", "server_id"),
    "reboot_server": Audited("server.reboot", "server", "server_id"),
    "create_ssh_key": Audited("ssh_key.create", "ssh_key", None),
    "delete_ssh_key": Audited("ssh_key.delete", "ssh_key", "key_id"),
}


def _route(request: Request) -> APIRoute:
    route = request.scope["route"]
    assert isinstance(route, APIRoute)
    return route


def mutation_of(request: Request) -> Mutation:
    route = _route(request)
    audited = AUDITED[route.name]
    target_id = None
    if audited.target_parameter is not None:
        raw = request.path_params.get(audited.target_parameter)
        target_id = (
            int(raw)
            if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 19
            else None
        )
    return Mutation(
        action=audited.action,
        target_type=audited.target_type,
        target_id=target_id,
        method=request.method,
        path=request.scope["path"],
        request_id=str(request.scope.get("state", {}).get("request_id", "-")),
    )


def success_status(request: Request) -> int:
    return _route(request).status_code or 200
