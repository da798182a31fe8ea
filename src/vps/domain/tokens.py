"""API token format: recognisable, checkable offline, stored only as a hash.

A token looks like `vps_<32 base62 characters><6 base62 checksum characters>`: the prefix lets
secret scanners spot a leaked token, the CRC32 checksum lets them (and us) reject a mistyped
or made-up token without a database lookup, and the 190 bits of randomness make guessing
hopeless. Only the SHA-256 of a token is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

PREFIX = "vps_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LENGTH = 32
_CHECKSUM_LENGTH = 6
TOKEN_LENGTH = len(PREFIX) + _RANDOM_LENGTH + _CHECKSUM_LENGTH


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECKSUM_LENGTH)


def generate_token() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return PREFIX + body + _checksum(body)


def is_well_formed(token: str) -> bool:
    """True when `token` has our prefix, length, alphabet and a valid checksum."""
    if len(token) != TOKEN_LENGTH or not token.startswith(PREFIX):
        return False
    body = token[len(PREFIX) : len(PREFIX) + _RANDOM_LENGTH]
    checksum = token[len(PREFIX) + _RANDOM_LENGTH :]
    if any(c not in _ALPHABET for c in body):
        return False
    return hmac.compare_digest(checksum, _checksum(body))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def display_prefix(token: str) -> str:
    """The part of a token that may be shown in listings to tell tokens apart."""
    return token[: len(PREFIX) + 6]
