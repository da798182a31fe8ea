"""`vps servers events [ID]`: followed live by a real `vps` process, one line per event."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.cli.conftest import Cli, create_server
from vps.testing import EmulatorAccount

DEADLINE_SECONDS = 30.0


class Follower:
    """A `vps ... events` process whose stdout lines are read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, wanted: Callable[[str], bool]) -> str:
        """The first new line for which `wanted` is true (fails at the deadline or EOF)."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no such line within {DEADLINE_SECONDS} s: {self.seen}"
            line = self.lines.get(timeout=remaining)
            assert line is not None, f"the stream ended first: {self.seen}"
            self.seen.append(line)
            if wanted(line):
                return line

    def finish(self) -> tuple[int, str]:
        code = self.process.wait(timeout=DEADLINE_SECONDS)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


@contextmanager
def follow(account: EmulatorAccount, config: Path, *args: str) -> Iterator[Follower]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("VPS_")}
    environment.pop("NO_COLOR", None)  # a pipe alone must be enough to drop colours
    environment.update(VPS_CONFIG=str(config), VPS_API_URL=account.url, VPS_TOKEN=account.token)
    process = subprocess.Popen(
        [sys.executable, "-m", "vps", "servers", "events", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        yield Follower(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _delete(api: httpx.Client, server_id: int) -> None:
    assert api.delete(f"/servers/{server_id}/").status_code == 204


def test_a_server_stream_ends_after_its_deletion(
    vps_account: EmulatorAccount, api: httpx.Client, config_file: Path
) -> None:
    server = create_server(api, "streamed")
    # From event 0, so nothing is missed before the stream is open.
    with follow(vps_account, config_file, str(server["id"]), "--after", "0", "-o", "json") as f:
        active = json.loads(f.until(lambda line: '"status": "active"' in line))
        assert active["type"] == "server.status" and active["server_id"] == server["id"]
        _delete(api, server["id"])
        deleted = json.loads(f.until(lambda line: '"status": "deleted"' in line))
        assert deleted["id"] > active["id"]
        code, stderr = f.finish()
    assert code == 0, stderr
    assert f"server {server['id']} is deleted: no more events" in stderr
    events = [json.loads(line) for line in f.seen]
    assert {event["server_id"] for event in events} == {server["id"]}
    ids = [event["id"] for event in events]
    assert ids == sorted(ids)
    assert any(e["type"] == "action.status" and e["action"]["kind"] == "create" for e in events)


def test_the_account_stream_until_ctrl_c(
    vps_account: EmulatorAccount, api: httpx.Client, config_file: Path
) -> None:
    server = create_server(api, "watched")
    with follow(vps_account, config_file, "--after", "0") as f:
        f.until(lambda line: f"server {server['id']}  provisioning -> active" in line)
        assert api.post(f"/servers/{server['id']}/stop/").status_code == 200
        f.until(lambda line: "(stop) succeeded" in line)
        assert api.patch(f"/servers/{server['id']}/", json={"name": "renamed"}).status_code == 200
        f.until(lambda line: f"server {server['id']}  updated name=renamed" in line)
        f.process.send_signal(signal.SIGINT)
        code, stderr = f.finish()
    assert code == 0, stderr
    assert "stopped" in stderr.splitlines()[-1]
    assert "Traceback" not in stderr
    assert not any("\x1b[" in line for line in f.seen)  # no colours into a pipe


def test_events_of_an_unknown_server(user_cli: Cli) -> None:
    result = user_cli("servers", "events", "987654")
    assert result.exit_code == 1
    assert "server 987654" in result.stderr
