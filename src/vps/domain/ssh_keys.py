"""Validation and fingerprints of OpenSSH public keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

ALLOWED_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
MIN_RSA_BITS = 2048
MAX_KEY_LENGTH = 16384


@dataclass(frozen=True)
class ParsedKey:
    key_type: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")

    @property
    def normalized(self) -> str:
        text = f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"
        return f"{text} {self.comment}" if self.comment else text


class InvalidKey(ValueError):
    pass


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise InvalidKey("the key data is truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise InvalidKey("the key data is truncated")
    return blob[offset + 4 : end], end


def parse_public_key(text: str) -> ParsedKey:
    """Parse one OpenSSH public key line (`type base64 [comment]`) or raise InvalidKey."""
    if len(text) > MAX_KEY_LENGTH:
        raise InvalidKey("the key is too long")
    text = text.strip()
    if "\n" in text or "\r" in text:
        raise InvalidKey("a public key is a single line; add one key at a time")
    parts = text.split(None, 2)
    if len(parts) < 2:
        raise InvalidKey("expected an OpenSSH public key such as 'ssh-ed25519 AAAA... comment'")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""
    if any(ord(c) < 32 or ord(c) == 127 for c in comment):
        raise InvalidKey("the comment must not contain control characters")
    if key_type not in ALLOWED_KEY_TYPES:
        raise InvalidKey(f"unsupported key type {key_type!r}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("the key data is not valid base64") from None
    embedded_type, offset = _read_string(blob, 0)
    if embedded_type.decode("ascii", "replace") != key_type:
        raise InvalidKey("the key data does not match its type")
    if key_type == "ssh-rsa":
        _exponent, offset = _read_string(blob, offset)
        modulus, offset = _read_string(blob, offset)
        bits = int.from_bytes(modulus, "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise InvalidKey(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    elif key_type == "ssh-ed25519":
        public, offset = _read_string(blob, offset)
        if len(public) != 32:
            raise InvalidKey("an Ed25519 key has 32 bytes of key data")
    else:
        while offset < len(blob):
            _part, offset = _read_string(blob, offset)
    if offset != len(blob):
        raise InvalidKey("the key data has trailing bytes")
    return ParsedKey(key_type=key_type, blob=blob, comment=comment)
