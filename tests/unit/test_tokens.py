"""API token format: prefix, length, alphabet, CRC32 checksum, and the stored hash."""

from __future__ import annotations

import hashlib
import re
import string
import zlib
from collections.abc import Callable

import pytest

from vps.domain.tokens import (
    PREFIX,
    TOKEN_LENGTH,
    display_prefix,
    generate_token,
    hash_token,
    is_well_formed,
)

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
FORMAT = re.compile(r"vps_[0-9A-Za-z]{38}")


def reference_checksum(body: str) -> str:
    """The documented checksum, computed independently: CRC32 in 6 base62 digits."""
    number = zlib.crc32(body.encode("ascii"))
    digits = ""
    for _ in range(6):
        number, remainder = divmod(number, 62)
        digits = ALPHABET[remainder] + digits
    return digits


def other_char(char: str) -> str:
    return "a" if char != "a" else "b"


def test_generated_tokens_have_the_documented_format() -> None:
    for _ in range(50):
        token = generate_token()
        assert FORMAT.fullmatch(token), token
        assert len(token) == TOKEN_LENGTH == 42
        assert token.startswith(PREFIX) and PREFIX == "vps_"
        assert token[-6:] == reference_checksum(token[4:36])
        assert is_well_formed(token)


def test_generated_tokens_are_unique() -> None:
    tokens = {generate_token() for _ in range(500)}
    assert len(tokens) == 500


def test_a_hand_made_token_with_the_right_checksum_is_well_formed() -> None:
    body = "0" * 32
    assert is_well_formed(PREFIX + body + reference_checksum(body))
    body = "abcDEF0123456789abcDEF0123456789"
    assert is_well_formed(PREFIX + body + reference_checksum(body))


def test_every_one_character_change_is_rejected() -> None:
    token = generate_token()
    for position in range(len(PREFIX), len(token)):
        for replacement in (other_char(token[position]), "0" if token[position] != "0" else "Z"):
            changed = token[:position] + replacement + token[position + 1 :]
            assert not is_well_formed(changed), (position, replacement)


def test_swapping_two_body_characters_is_rejected() -> None:
    body = "ab" + "c" * 30
    token = PREFIX + body + reference_checksum(body)
    swapped = PREFIX + "ba" + "c" * 30 + reference_checksum(body)
    assert is_well_formed(token)
    assert not is_well_formed(swapped)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1],
        lambda t: t + "a",
        lambda t: "vpt_" + t[4:],
        lambda t: "VPS_" + t[4:],
        lambda t: t[4:] + "abcd",
        lambda t: "",
        lambda t: t[:10] + "-" + t[11:],
        lambda t: t[:10] + " " + t[11:],
        lambda t: t[:10] + "é" + t[11:],
    ],
    ids=[
        "too-short",
        "too-long",
        "wrong-prefix",
        "upper-prefix",
        "no-prefix",
        "empty",
        "hyphen-in-body",
        "space-in-body",
        "non-ascii-in-body",
    ],
)
def test_malformed_tokens_are_rejected(mutate: Callable[[str], str]) -> None:
    token = generate_token()
    assert not is_well_formed(mutate(token))


def test_a_body_outside_the_alphabet_is_rejected_even_with_a_matching_crc() -> None:
    body = "-" * 32
    assert not is_well_formed(PREFIX + body + reference_checksum(body))


def test_hash_is_sha256_hex_and_deterministic() -> None:
    token = generate_token()
    digest = hash_token(token)
    assert digest == hashlib.sha256(token.encode("ascii")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert hash_token(token) == digest
    assert token not in digest


def test_hashes_differ_for_a_one_character_change() -> None:
    token = generate_token()
    changed = token[:-1] + other_char(token[-1])
    assert hash_token(token) != hash_token(changed)


def test_display_prefix_shows_the_prefix_and_six_characters_only() -> None:
    token = generate_token()
    shown = display_prefix(token)
    assert shown == token[:10]
    assert shown.startswith(PREFIX)
    assert len(shown) == 10
