"""What a real client does that a generator cannot: refer to resources that exist, and
send a fresh `Idempotency-Key` with each new request. Applied to each generated request
before it is sent; an invalid request keeps the invalid part it was generated with."""

from __future__ import annotations

import base64
import os
import random
import re
import uuid
from dataclasses import dataclass
from typing import Any

import schemathesis

from vps.domain import idempotency

AnyCase = schemathesis.Case[Any]

_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{idempotency.MAX_KEY_LENGTH}}}")


@dataclass(frozen=True)
class FuzzAccount:
    """Who the generated requests act as, and what its creates may refer to."""

    account_id: int
    token: str
    plan_ids: tuple[int, ...]
    os_ids: tuple[int, ...]
    locations: tuple[str, ...]


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def fresh_public_key() -> str:
    """A well-formed Ed25519 public key never seen before (any 32 bytes are one)."""
    blob = _ssh_string(b"ssh-ed25519") + _ssh_string(os.urandom(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} fuzz@example"


def _fresh_idempotency_key(case: AnyCase) -> None:
    """Generated keys repeat across different bodies, which the API rightly refuses as a key
    reused for another request (replays are tested where the key is chosen on purpose). A
    malformed key is left alone: it must be refused."""
    for name, value in list(case.headers.items()):
        if name.lower() == idempotency.HEADER.lower() and _IDEMPOTENCY_KEY.fullmatch(str(value)):
            case.headers[name] = str(uuid.uuid4())


def _header_patterns(case: AnyCase) -> dict[str, re.Pattern[str]]:
    operation = case.operation
    raw = operation.schema.raw_schema["paths"][operation.path][operation.method.lower()]
    return {
        parameter["name"].lower(): re.compile(parameter["schema"]["pattern"])
        for parameter in raw.get("parameters", [])
        if parameter["in"] == "header" and "pattern" in parameter.get("schema", {})
    }


def _drop_unsendable_headers(case: AnyCase) -> None:
    """Leave out an optional header whose "valid" value breaks its documented pattern.

    Schemathesis's coverage phase builds header values from letters and digits only, so it
    cannot write an entity tag (`"7"`, quotes included) and fills a valid case's `If-Match`
    with a placeholder such as `0`, which the API rightly refuses. The other phases generate
    from the pattern and are not affected.
    """
    patterns = _header_patterns(case)
    for name, value in list(case.headers.items()):
        pattern = patterns.get(name.lower())
        if pattern is not None and not pattern.search(str(value)):
            del case.headers[name]


def _shorten_a_valid_wait(case: AnyCase) -> None:
    """In an invalid request whose flaw is elsewhere (an unnamed query parameter, say, which
    the API ignores), a valid `wait` still holds the answer for its whole length: shorten
    it, and leave an invalid one as generated."""
    if not case.query or "wait" not in case.query:
        return
    try:
        seconds = float(case.query["wait"])
    except (TypeError, ValueError):
        return
    if 0 < seconds <= 60:
        case.query = {**case.query, "wait": 0.05}


def as_a_client_would(case: AnyCase, account: FuzzAccount) -> None:
    """Make a valid request's references to other resources real.

    A schema says what a plan id looks like, not which plans exist, nor which strings are
    SSH keys: left as generated, every valid create would be refused (rightly, with a 400)
    and no server would ever be built for the stateful phase to drive. Invalid requests are
    left alone: they must be refused whatever they refer to.
    """
    _fresh_idempotency_key(case)
    if case.meta is None or not case.meta.generation.mode.is_positive:
        _shorten_a_valid_wait(case)
        return
    _drop_unsendable_headers(case)
    label = case.operation.label
    if label == "POST /api/v1/servers/" and isinstance(case.body, dict):
        # Chosen from the body, so that Hypothesis replays a case exactly.
        choose = random.Random(repr(sorted(case.body.items()))).choice
        body = {
            **case.body,
            "plan_id": choose(account.plan_ids),
            "os_id": choose(account.os_ids),
            "location": choose(account.locations),
        }
        # A key id from an earlier step may name a key deleted since: a correct 400.
        body.pop("ssh_key_id", None)
        case.body = body
    elif label == "POST /api/v1/ssh-keys/" and isinstance(case.body, dict):
        case.body = {**case.body, "public_key": fresh_public_key()}
    elif case.query and ("wait" in case.query or "wait_for" in case.query):
        # A long-poll may rightly wait its whole `wait` (up to a minute) for a change no
        # step of a fuzz run makes: a client in a hurry asks for a short one.
        case.query = {**case.query, "wait": 0.05}
    if label == "GET /api/v1/servers/" and case.query and "location" in case.query:
        case.query = {**case.query, "location": account.locations[0]}
