"""The web panel in a real browser: headless Chromium, driven by Selenium, against a real
`vps serve` (simulated hypervisor, fast timings) on a database of its own.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package. Without them
these tests are skipped with the reason; with VPS_TEST_BROWSER=required (CI) a missing piece
is a failure instead. Screenshots land in `test-artifacts/` (ignored by git);
VPS_UPDATE_SCREENSHOTS=1 also refreshes the ones in `docs/screenshots/`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import new_database_url
from tests.e2e.processes import VpsCommand, free_port, stop_gently, wait_for_http

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver as Chrome

    from tests.browser.panel import Panel

# Debian's packages; other systems can point at their own (a driver matching the browser).
CHROMIUM = Path(os.environ.get("VPS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("VPS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
DOC_SCREENSHOTS = REPO / "docs" / "screenshots"
DESKTOP = (1280, 900)


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install selenium)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            return f"{path} is missing (apt-get install {package})"
    return None


_REQUIRED = os.environ.get("VPS_TEST_BROWSER") == "required"
if _REQUIRED and (_reason := _missing()):
    # Before the test modules are collected: without selenium they would skip themselves.
    raise pytest.UsageError(f"browser tests are required but cannot run: {_reason}")


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    reason = _missing()
    if reason is not None:
        pytest.skip(f"browser tests: {reason}")


@dataclass(frozen=True)
class Account:
    name: str
    token: str

    def client(self, base_url: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{base_url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=40,
        )


@dataclass
class Service:
    """A running `vps serve`, and the operator's command to make accounts and tokens."""

    base_url: str
    vps: VpsCommand

    def _run(self, *args: str) -> str:
        result = self.vps.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def account(self, prefix: str, credits: str = "200") -> Account:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self._run("accounts", "create", name, "--credits", credits)
        return Account(name, self.token(name))

    def token(self, account: str, *, read_only: bool = False) -> str:
        flags = ("--read-only",) if read_only else ()
        return self._run("tokens", "create", account, *flags).strip().splitlines()[-1]

    def revoke_tokens(self, account: str) -> None:
        for line in self._run("tokens", "list", account).splitlines():
            token_id = line.split()[0] if line.strip() else ""
            if token_id.isdigit():
                self._run("tokens", "revoke", token_id)

    def create_server(self, account: Account, name: str, **fields: Any) -> dict[str, Any]:
        """A server made through the API (not the page), waited for until it is active."""
        body = {"name": name, "plan_id": 3, "os_id": 5, "location": "us-west", **fields}
        with account.client(self.base_url) as api:
            created = api.post("/servers/", json=body)
            assert created.status_code == 201, created.text
            server_id = created.json()["id"]
            waited = api.get(f"/servers/{server_id}/", params={"wait_for": "active", "wait": 30})
            assert waited.json()["status"] == "active", waited.text
            result: dict[str, Any] = waited.json()
            return result


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("panel")
    with new_database_url(directory) as url:
        vps = VpsCommand(
            data_dir=directory / "data",
            env={
                "VPS_DATABASE_URL": url,
                "VPS_DEMO": "false",
                "VPS_LOG_LEVEL": "warning",
                # Slow enough to see the transitional statuses on the page, fast enough to
                # keep the suite short.
                "VPS_SIM_PROVISION_SECONDS": "2",
                "VPS_SIM_ACTION_SECONDS": "1",
                "VPS_SIM_DELETE_SECONDS": "0.2",
                "VPS_WORKER_POLL_SECONDS": "0.1",
                "VPS_USAGE_SAMPLE_SECONDS": "1",
            },
        )
        upgraded = vps.run("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        port = free_port()
        process = vps.start("serve", "--port", str(port), log=directory / "serve.log")
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_for_http(base_url)
            yield Service(base_url, vps)
        finally:
            stop_gently(process)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    # The directory ignores itself, whatever the repository's .gitignore says.
    (ARTIFACTS / ".gitignore").write_text("*\n")
    return ARTIFACTS


@pytest.fixture(scope="session")
def _driver(artifacts: Path) -> Iterator[Chrome]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    # Both paths given: Selenium Manager is never asked to find (or download) anything.
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="panel-chromium-")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--lang=en-US",
        f"--user-data-dir={profile}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_service = DriverService(
        executable_path=str(CHROMEDRIVER), log_output=str(artifacts / "chromedriver.log")
    )
    driver = webdriver.Chrome(service=driver_service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _console(driver: Chrome) -> list[dict[str, Any]]:
    """The browser console's entries since the last call (and forgets them)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


# The browser logs every 4xx that a page's fetch receives; the tests ask for those on purpose.
_EXPECTED = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


@pytest.fixture
def driver(_driver: Chrome, service: Service) -> Iterator[Chrome]:
    """The shared browser, signed out and at desktop size; after the test, no script error
    may have reached the console."""
    _driver.set_window_size(*DESKTOP)
    _driver.get(f"{service.base_url}/panel/assets/favicon.svg")
    _driver.delete_all_cookies()
    _console(_driver)
    yield _driver
    errors = [
        entry["message"]
        for entry in _console(_driver)
        if entry["level"] == "SEVERE" and not _EXPECTED.search(entry["message"])
    ]
    _driver.get("about:blank")
    assert not errors, errors


@pytest.fixture
def panel(driver: Chrome, service: Service, artifacts: Path) -> Panel:
    from tests.browser.panel import Panel

    return Panel(driver, service.base_url, artifacts)
