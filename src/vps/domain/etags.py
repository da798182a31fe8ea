"""Entity tags for optimistic concurrency (RFC 9110 `ETag` and `If-Match`).

A server's ETag is its version, which every write to the server bumps (a user's change, a
power action, the worker's progress). Usage figures are a live sample kept apart: they do
not change the ETag, so a read-modify-write is not refused because a sample came in
between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vps.domain.errors import InvalidParameters

HEADER = "If-Match"
# `*`, or a list of entity-tags (RFC 9110 8.8.3): each optionally weak, then a quoted string
# of etagc characters (a comma inside the quotes belongs to the tag), separated by commas,
# with optional whitespace (what Python's `strip()` takes for it in Latin-1) around them.
# The OpenAPI document publishes this same pattern.
_ETAG_CHARS = r"[\x21\x23-\x7e\x80-\xff]"
_OWS = r"[\x09-\x0d\x1c-\x20\x85\xa0]*"
_ETAG = rf'(?:W/)?"{_ETAG_CHARS}*"'
IF_MATCH_PATTERN = rf"^{_OWS}(?:\*|{_ETAG}(?:{_OWS},{_OWS}{_ETAG})*){_OWS}$"
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_ONE_TAG = re.compile(rf'(W/)?"({_ETAG_CHARS}*)"')


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True)
class Precondition:
    """What `If-Match` asks: any current version (`*`), or one of these strong tags."""

    any_version: bool
    versions: frozenset[int]

    def allows(self, version: int) -> bool:
        return self.any_version or version in self.versions


def parse_if_match(value: str) -> Precondition:
    """The precondition of an `If-Match` header, or a 400 naming it when it is not a list of
    entity tags. Weak tags never match (If-Match compares strongly), nor do tags that are not
    ours; both are well-formed, so they fail the precondition (412), not the request (400)."""
    if not _IF_MATCH.match(value):
        raise InvalidParameters.single(
            HEADER, 'Must be "*" or a list of entity tags such as "7" (quotes included).'
        )
    if value.strip() == "*":
        return Precondition(any_version=True, versions=frozenset())
    versions: set[int] = set()
    for weak, opaque in _ONE_TAG.findall(value):
        if not weak and opaque.isascii() and opaque.isdigit() and len(opaque) <= 18:
            versions.add(int(opaque))
    return Precondition(any_version=False, versions=frozenset(versions))
