from __future__ import annotations

from dataclasses import dataclass

from vps.domain.errors import Forbidden


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account, through one of its tokens."""

    account_id: int
    token_id: int
    read_only: bool

    def require_write(self) -> None:
        if self.read_only:
            raise Forbidden("This token is read-only; use a read-write token to make changes.")
