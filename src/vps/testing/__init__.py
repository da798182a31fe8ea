"""The emulator for client developers' test suites: the real API on a real HTTP port, on a
temporary SQLite database, with the simulated hypervisor under the test's control.

```python
from vps.testing import Emulator

with Emulator() as emulator:
    account = emulator.create_account(credits="100.00")
    # point your client at account.url with account.token
    emulator.set_timings(provision_seconds=5)     # provisioning takes 5 s
    emulator.fail_next("create")                  # the next build fails
    emulator.set_credits(account.name, "0.00")    # the next create answers 402
```

With pytest, the fixtures `vps_emulator` and `vps_account` (see `vps.testing.plugin`) are
available as soon as `vps` is installed.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from vps.config import Settings
from vps.db import migrate
from vps.db.engine import Database
from vps.runtime import build_app

# Fast enough for a test suite, slow enough that intermediate statuses can be observed.
DEFAULT_TIMINGS = {"provision_seconds": 0.2, "action_seconds": 0.1, "delete_seconds": 0.05}
_START_TIMEOUT_SECONDS = 30.0


class EmulatorError(RuntimeError):
    """The emulator could not start, or refused a control request."""


@dataclass(frozen=True)
class EmulatorAccount:
    """An account of the emulator: point a client at `url` with `token`."""

    name: str
    token: str
    url: str


class Emulator:
    """The API with its embedded worker, served by uvicorn in a background thread.

    `settings` overrides any setting (`Settings` field names, e.g. `worker_max_attempts=2`).
    Faults and timings are process-wide: tests that share an emulator should `reset()` it
    between them (the `vps_account` fixture does).
    """

    def __init__(self, *, port: int = 0, data_dir: Path | None = None, **settings: Any) -> None:
        self._owned_dir = None if data_dir else tempfile.TemporaryDirectory(prefix="vps-emu-")
        directory = data_dir or Path(self._owned_dir.name)  # type: ignore[union-attr]
        values: dict[str, Any] = {
            "data_dir": directory,
            "database_url": f"sqlite:///{directory / 'emulator.db'}",
            "host": "127.0.0.1",
            "demo": False,
            "rate_limits": "off",
            "emulator_controls": True,
            "log_level": "warning",
            "worker_poll_seconds": 0.5,
            "worker_retry_base_seconds": 0.05,
            "worker_retry_max_seconds": 0.5,
            "event_poll_seconds": 0.05,
            **{f"sim_{name}": seconds for name, seconds in DEFAULT_TIMINGS.items()},
        }
        values.update(settings)
        self.settings = Settings(**values)
        self._port = port
        # What `reset()` goes back to.
        self._timings = {
            "provision_seconds": self.settings.sim_provision_seconds,
            "action_seconds": self.settings.sim_action_seconds,
            "delete_seconds": self.settings.sim_delete_seconds,
        }
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._http: httpx.Client | None = None
        self.url = ""

    # Life cycle -------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._thread is not None:
            raise EmulatorError("the emulator is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._socket = sock
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.settings = self.settings.model_copy(update={"port": port})
        config = uvicorn.Config(
            build_app(self.settings),
            log_level="warning",
            access_log=False,
            lifespan="on",
            # Open event streams never finish by themselves: end them at stop.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="vps-emulator", daemon=True
        )
        self._thread.start()
        if not started.wait(_START_TIMEOUT_SECONDS) or self._failure is not None:
            self.stop()
            raise EmulatorError(f"the emulator did not start: {self._failure!r}")
        self._http = httpx.Client(base_url=self.url, timeout=10.0)
        self.reset()
        return self

    def _serve(self, started: threading.Event) -> None:
        async def main() -> None:
            database = Database(self.settings.resolved_database_url)
            try:
                await migrate.upgrade(database)
            finally:
                await database.dispose()
            assert self._server is not None and self._socket is not None
            serving = asyncio.create_task(self._server.serve(sockets=[self._socket]))
            # uvicorn exposes only a flag for "listening", no event to wait on.
            while not self._server.started and not serving.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            started.set()
            await serving

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by start(), or by stop()
            self._failure = error
        finally:
            started.set()

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._owned_dir is not None:
            self._owned_dir.cleanup()
            self._owned_dir = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Controls (through the emulator's own `/_emulator/` surface) -------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._http is None:
            raise EmulatorError("the emulator is not running")
        response = self._http.request(method, f"/_emulator{path}", json=body)
        if response.is_error:
            raise EmulatorError(f"{method} /_emulator{path}: {response.text}")
        return response.json() if response.content else None

    def create_account(
        self, *, credits: str = "100.00", name: str | None = None
    ) -> EmulatorAccount:
        """A new account with these credits and a read-write token."""
        created = self._call("POST", "/accounts/", {"name": name, "credits": credits})
        return EmulatorAccount(created["name"], created["token"], self.url)

    def set_credits(self, account: str | EmulatorAccount, balance: str) -> None:
        """Set an account's balance ("0.00": the next create answers `402`)."""
        name = account.name if isinstance(account, EmulatorAccount) else account
        self._call("PUT", f"/accounts/{name}/balance/", {"balance": balance})

    def set_timings(
        self,
        *,
        provision_seconds: float | None = None,
        action_seconds: float | None = None,
        delete_seconds: float | None = None,
    ) -> None:
        """How long the simulated hypervisor takes, from now on (None: unchanged)."""
        changes = {
            "provision_seconds": provision_seconds,
            "action_seconds": action_seconds,
            "delete_seconds": delete_seconds,
        }
        self._call("PATCH", "/timings/", {k: v for k, v in changes.items() if v is not None})

    def fail_next(
        self, operation: str, *, count: int = 1, retriable: bool = False, message: str = ""
    ) -> None:
        """The next `count` calls of `operation` (create, start, stop, reboot, delete) fail:
        permanently (the action fails at once; a failed build is refunded) or, with
        `retriable`, as a transient error the worker retries with backoff."""
        self._call(
            "POST",
            "/faults/",
            {"operation": operation, "count": count, "retriable": retriable, "message": message},
        )

    def set_location_full(self, location: str, full: bool = True) -> None:
        """Creates in `location` answer `503 location_full` (the SDK raises `LocationFull`),
        as when no hypervisor host there has room; `full=False` undoes it."""
        self._call("PUT", f"/locations/{location}/full/", {"full": full})

    def reset(self) -> None:
        """The timings the emulator started with, no pending fault, no full location."""
        self._call("DELETE", "/faults/")
        self._call("PATCH", "/timings/", self._timings)
        self._call("DELETE", "/locations/full/")


__all__ = ["DEFAULT_TIMINGS", "Emulator", "EmulatorAccount", "EmulatorError"]
