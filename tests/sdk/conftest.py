"""Clients of the emulator's real HTTP API (`vps.testing`), one fresh account per test."""

from __future__ import annotations

import base64
import os
import struct
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from vps.client import AsyncClient, Client
from vps.testing import EmulatorAccount


@pytest.fixture
def client(vps_account: EmulatorAccount) -> Iterator[Client]:
    with Client(vps_account.url, vps_account.token, timeout=30.0) as sdk:
        yield sdk


@pytest.fixture
async def async_client(vps_account: EmulatorAccount) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(vps_account.url, vps_account.token, timeout=30.0) as sdk:
        yield sdk


def unique_name(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ed25519_public_key() -> str:
    """A well-formed, never-before-seen ed25519 public key line."""

    def field(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    blob = field(b"ssh-ed25519") + field(os.urandom(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} sdk@test"
