"""pytest fixtures for testing code that talks to the VPS.org Servers API.

Registered automatically (an entry point) when `vps` is installed:

- `vps_emulator`: one running `Emulator` for the whole test session;
- `vps_account`: a fresh account with 100.00 credits for one test; the emulator's timings
  and injected faults are reset after it.

```python
def test_my_deploy_script(vps_account, vps_emulator):
    vps_emulator.fail_next("create")
    result = my_tool.deploy(api_url=vps_account.url, token=vps_account.token)
    assert result.failed
```
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vps.testing import Emulator, EmulatorAccount


@pytest.fixture(scope="session")
def vps_emulator() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def vps_account(vps_emulator: Emulator) -> Iterator[EmulatorAccount]:
    account = vps_emulator.create_account(credits="100.00")
    try:
        yield account
    finally:
        vps_emulator.reset()
