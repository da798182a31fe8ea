"""Idempotency keys (the IETF `Idempotency-Key` header, with Stripe's semantics): the rules
for a key and for recognising "the same request" again.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from vps.domain.errors import InvalidParameters

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Visible ASCII: a UUID, a ULID or any client's own scheme fits; whitespace and control
# characters are refused so a key cannot differ from another only by what a log hides.
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")


def checked_key(value: str) -> str:
    """The key itself, or a 400 naming the header."""
    if not _KEY.fullmatch(value):
        raise InvalidParameters.single(
            HEADER,
            f"Must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (a UUID is a good key).",
        )
    return value


def fingerprint(method: str, path: str, body: Any) -> str:
    """A hash of what the request asks: the method, the path and the body's meaning (keys
    sorted, so that formatting or key order does not make it another request)."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
