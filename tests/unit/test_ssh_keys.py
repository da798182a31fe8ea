"""OpenSSH public key parsing: valid keys (from ssh-keygen when installed, and fixed known-good
strings), fingerprints as ssh-keygen prints them, and every kind of malformed key."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from vps.domain.ssh_keys import MAX_KEY_LENGTH, InvalidKey, ParsedKey, parse_public_key

# Generated once with ssh-keygen (OpenSSH 9.2); fingerprints from `ssh-keygen -lf`.
FIXED_ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbuoQleXvKwT0aPEOoRvTJnDrwTcVjQI5DRs86tOAFQ fixed@example"
)
FIXED_ED25519_FINGERPRINT = "SHA256:8mvZwD3n2/rgPM1jPv4F2tPF3ujIC5k7hie2o8N9DmM"
FIXED_RSA = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCxcpdYCyo0/kpKoP+JiUXiQ2JdAuRRdliDZm7MxMUpKpt+oUMo8VjO"
    "rwwNLEqSwOxbPYHEZJK7DPP4ij03Gqgk73WUwVjkjGWJUvOHJomVvQIEjm6tW3BzDKjWjDIvoxUV2Ghh9UKglEtJKhLj"
    "3z6bcci7RmkX1SliN0HWG6DY6P0qjJBGkLu/dC4XJDPNPLi9Ig6Hjd0f1goL51ZBS+ES1ox7HAl/VMpgXi72zkLvUxO8"
    "2GduGdRvAM6lEmVHI94m14N1qWT0NynW1emmRHJoIbPIURkJbBP+7iAEsbtPNmyOILODztiDjvFEEFjb55u6TT6yFBXm"
    "IbyHpRG+7Sjp fixed@example"
)
FIXED_RSA_FINGERPRINT = "SHA256:xvJBhv7LWV3dnwXZHYlXMIKNA0KXefz+w8iw7tCJhVA"

SSH_KEYGEN = shutil.which("ssh-keygen")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed")


def ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def key_line(key_type: str, blob: bytes, comment: str = "") -> str:
    line = f"{key_type} {base64.b64encode(blob).decode('ascii')}"
    return f"{line} {comment}" if comment else line


def rsa_blob(modulus_bits: int, *, exponent: int = 65537) -> bytes:
    modulus = (1 << (modulus_bits - 1)) | 1  # exactly `modulus_bits` significant bits
    # mpint encoding: a leading zero byte keeps the top bit from reading as a sign.
    encoded = b"\x00" + modulus.to_bytes((modulus_bits + 7) // 8, "big")
    e = exponent.to_bytes((exponent.bit_length() + 8) // 8, "big")
    return ssh_string(b"ssh-rsa") + ssh_string(e) + ssh_string(encoded)


def ed25519_blob(key: bytes = b"\x11" * 32) -> bytes:
    return ssh_string(b"ssh-ed25519") + ssh_string(key)


def blob_of(line: str) -> bytes:
    return base64.b64decode(line.split()[1])


def keygen(tmp_path: Path, key_type: str, bits: int | None = None) -> tuple[str, str]:
    """A fresh public key line and its fingerprint as `ssh-keygen -lf` reports it."""
    assert SSH_KEYGEN is not None
    path = tmp_path / f"id_{key_type}_{bits or 0}"
    command = [SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", "me@laptop", "-f", str(path)]
    if bits is not None:
        command[2:2] = ["-b", str(bits)]
    subprocess.run(command, check=True, capture_output=True)
    line = path.with_suffix(".pub").read_text().strip()
    listing = subprocess.run(
        [SSH_KEYGEN, "-lf", str(path.with_suffix(".pub"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return line, listing[1]


# Valid keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key_type", "fingerprint"),
    [
        (FIXED_ED25519, "ssh-ed25519", FIXED_ED25519_FINGERPRINT),
        (FIXED_RSA, "ssh-rsa", FIXED_RSA_FINGERPRINT),
    ],
    ids=["ed25519", "rsa-2048"],
)
def test_fixed_known_good_keys(line: str, key_type: str, fingerprint: str) -> None:
    parsed = parse_public_key(line)
    assert parsed.key_type == key_type
    assert parsed.comment == "fixed@example"
    assert parsed.blob == blob_of(line)
    assert parsed.fingerprint == fingerprint
    assert parsed.normalized == line


@needs_ssh_keygen
@pytest.mark.parametrize(
    ("key_type", "bits", "expected_type"),
    [
        ("ed25519", None, "ssh-ed25519"),
        ("rsa", 2048, "ssh-rsa"),
        ("rsa", 3072, "ssh-rsa"),
        ("rsa", 4096, "ssh-rsa"),
        ("ecdsa", 256, "ecdsa-sha2-nistp256"),
        ("ecdsa", 384, "ecdsa-sha2-nistp384"),
        ("ecdsa", 521, "ecdsa-sha2-nistp521"),
    ],
)
def test_keys_from_ssh_keygen(
    tmp_path: Path, key_type: str, bits: int | None, expected_type: str
) -> None:
    line, fingerprint = keygen(tmp_path, key_type, bits)
    parsed = parse_public_key(line)
    assert parsed.key_type == expected_type
    assert parsed.comment == "me@laptop"
    assert parsed.fingerprint == fingerprint
    assert parsed.normalized == line


@needs_ssh_keygen
def test_short_rsa_key_from_ssh_keygen_is_rejected(tmp_path: Path) -> None:
    line, _ = keygen(tmp_path, "rsa", 1024)
    with pytest.raises(InvalidKey, match="2048"):
        parse_public_key(line)


def test_comment_is_optional_and_may_contain_spaces() -> None:
    bare = " ".join(FIXED_ED25519.split()[:2])
    assert parse_public_key(bare).comment == ""
    assert parse_public_key(bare).normalized == bare
    spaced = parse_public_key(bare + "  my laptop key  ")
    assert spaced.comment == "my laptop key"
    assert parse_public_key("  " + FIXED_ED25519 + "\n").normalized == FIXED_ED25519


def test_fingerprint_ignores_the_comment() -> None:
    bare = " ".join(FIXED_ED25519.split()[:2])
    assert parse_public_key(bare + " other").fingerprint == FIXED_ED25519_FINGERPRINT


def test_rsa_of_exactly_2048_bits_is_accepted() -> None:
    parsed = parse_public_key(key_line("ssh-rsa", rsa_blob(2048)))
    assert isinstance(parsed, ParsedKey)
    assert parsed.key_type == "ssh-rsa"


def test_ed25519_built_by_hand_is_accepted() -> None:
    assert parse_public_key(key_line("ssh-ed25519", ed25519_blob())).key_type == "ssh-ed25519"


# Invalid keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [512, 1024, 2047])
def test_short_rsa_keys_are_rejected(bits: int) -> None:
    with pytest.raises(InvalidKey, match="at least 2048 bits"):
        parse_public_key(key_line("ssh-rsa", rsa_blob(bits)))


@pytest.mark.parametrize(
    "encoded",
    [
        "AAAA!!!!",
        "AAAAC3NzaC1lZDI1NTE5AAAAIGbuoQleXvKwT0aPEOoRvTJnDrwTcVjQI5DRs86tOAF",  # bad padding
        "AAAAC3NzaC1lZDI1NTE5AAAAIGbuoQleXvKwT0aPEOoRvTJnDrwTcVjQI5DRs86t*AFQ",
        "not-base64",
    ],
)
def test_bad_base64_is_rejected(encoded: str) -> None:
    with pytest.raises(InvalidKey, match="base64"):
        parse_public_key(f"ssh-ed25519 {encoded} me@laptop")


@pytest.mark.parametrize(
    ("claimed", "line"),
    [
        ("ssh-rsa", FIXED_ED25519),
        ("ssh-ed25519", FIXED_RSA),
        ("ecdsa-sha2-nistp256", FIXED_ED25519),
    ],
)
def test_type_that_does_not_match_the_key_data_is_rejected(claimed: str, line: str) -> None:
    _, encoded, comment = line.split(" ", 2)
    with pytest.raises(InvalidKey, match="does not match"):
        parse_public_key(f"{claimed} {encoded} {comment}")


@pytest.mark.parametrize(
    "line",
    [
        key_line("ssh-ed25519", ed25519_blob() + b"\x00"),
        key_line("ssh-ed25519", ed25519_blob() + ssh_string(b"extra")),
        key_line("ssh-rsa", rsa_blob(2048) + ssh_string(b"extra")),
        key_line("ssh-rsa", rsa_blob(2048) + b"\x00\x00"),
    ],
    ids=["ed25519-byte", "ed25519-string", "rsa-string", "rsa-bytes"],
)
def test_trailing_data_is_rejected(line: str) -> None:
    with pytest.raises(InvalidKey, match="trailing"):
        parse_public_key(line)


def test_trailing_data_on_a_real_key_is_rejected() -> None:
    key_type, _, comment = FIXED_ED25519.split(" ", 2)
    with pytest.raises(InvalidKey, match="trailing"):
        parse_public_key(key_line(key_type, blob_of(FIXED_ED25519) + b"\x00", comment))


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x00\x00",
        ssh_string(b"ssh-ed25519")[:-2],
        ssh_string(b"ssh-ed25519") + struct.pack(">I", 32) + b"\x11" * 31,
        ssh_string(b"ssh-ed25519") + struct.pack(">I", 1000),
    ],
    ids=["empty", "short-length", "short-type", "short-key", "huge-length"],
)
def test_truncated_key_data_is_rejected(blob: bytes) -> None:
    with pytest.raises(InvalidKey):
        parse_public_key(key_line("ssh-ed25519", blob))


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_ed25519_key_must_have_32_bytes(size: int) -> None:
    with pytest.raises(InvalidKey, match="32 bytes"):
        parse_public_key(key_line("ssh-ed25519", ed25519_blob(b"\x11" * size)))


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("", "expected an OpenSSH public key"),
        ("ssh-ed25519", "expected an OpenSSH public key"),
        ("AAAAC3NzaC1lZDI1NTE5AAAAIGbuoQleXvKwT0aPEOoRvTJnDrwTcVjQI5DRs86tOAFQ", "expected"),
        ("ssh-dss AAAAB3NzaC1kc3M= me", "unsupported key type"),
        ("SSH-ED25519 " + FIXED_ED25519.split()[1], "unsupported key type"),
        ("-----BEGIN OPENSSH PRIVATE KEY----- abc", "unsupported key type"),
    ],
)
def test_malformed_lines_are_rejected(line: str, fragment: str) -> None:
    with pytest.raises(InvalidKey, match=fragment):
        parse_public_key(line)


BARE_ED25519 = " ".join(FIXED_ED25519.split()[:2])


@pytest.mark.parametrize(
    "text",
    [
        FIXED_ED25519 + "\n" + FIXED_RSA,
        FIXED_ED25519 + "\r" + FIXED_RSA,
        FIXED_ED25519 + "\r\ninjected",
        # The first key has no comment: the line break directly follows its key data.
        BARE_ED25519 + "\n" + FIXED_RSA,
        BARE_ED25519 + "\r\n" + FIXED_ED25519,
        BARE_ED25519.replace(" ", "\n", 1),
    ],
    ids=[
        "two-keys",
        "two-keys-cr",
        "crlf-in-comment",
        "two-keys-first-bare",
        "two-keys-first-bare-crlf",
        "type-and-data-on-two-lines",
    ],
)
def test_more_than_one_line_is_rejected(text: str) -> None:
    """A public key is one line: a paste of two keys must not become one key whose comment is
    the second key."""
    with pytest.raises(InvalidKey):
        parse_public_key(text)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f"], ids=["nul", "escape", "delete"])
def test_control_characters_in_the_comment_are_rejected(char: str) -> None:
    with pytest.raises(InvalidKey):
        parse_public_key(f"{FIXED_ED25519}{char}x")


def test_overlong_input_is_rejected() -> None:
    with pytest.raises(InvalidKey, match="too long"):
        parse_public_key(FIXED_ED25519 + " " + "x" * MAX_KEY_LENGTH)
    # A long comment within the limit is fine.
    long_comment = "x" * (MAX_KEY_LENGTH - len(FIXED_ED25519) - 1)
    assert parse_public_key(FIXED_ED25519 + " " + long_comment).key_type == "ssh-ed25519"


def test_invalid_key_is_a_value_error() -> None:
    assert issubclass(InvalidKey, ValueError)
