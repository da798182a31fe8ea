"""The README tells the truth about settings, and the package ships its migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vps.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`VPS_{name.upper()}`" in readme, name


@pytest.mark.slow
def test_wheel_ships_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("vps-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "vps/db/migrations/env.py" in names
    assert "vps/db/migrations/script.py.mako" in names
    assert any(n.startswith("vps/db/migrations/versions/0001_") for n in names)
    assert "vps/py.typed" in names
