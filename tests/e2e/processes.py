"""Run the real `vps` command in subprocesses, as users and operators do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], Any], deadline_seconds: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy, or fail at the deadline."""
    end = time.monotonic() + deadline_seconds
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class VpsCommand:
    """The `vps` command with an environment of its own (data dir, database, timings)."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("VPS_")}
        # Rate limits off unless a test turns them on: a test's bursts are not abuse.
        return {**base, "VPS_DATA_DIR": str(self.data_dir), "VPS_RATE_LIMITS": "off", **self.env}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vps", *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "vps", *args],
            env=self.environment(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def stop_gently(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            kill_hard(process)


def wait_for_http(base_url: str, deadline_seconds: float = 30.0) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{base_url}/api/v1/openapi.json", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, deadline_seconds, f"{base_url} to answer")
