"""Answering a request with the remembered outcome of an earlier one (idempotency keys)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from vps.services.idempotency import Outcome


class Replayed(Exception):
    """Raised to answer with an outcome already given to a request with the same key."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__("replayed")
        self.outcome = outcome


def install_replay_handler(app: FastAPI) -> None:
    @app.exception_handler(Replayed)
    async def _replayed(_request: Request, replayed: Replayed) -> Response:
        outcome = replayed.outcome
        headers = {**outcome.headers, "Idempotency-Replay": "true"}
        return Response(outcome.body, status_code=outcome.status_code, headers=headers)
