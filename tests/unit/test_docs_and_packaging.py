"""The README tells the truth about settings, and the package ships its migrations and the
web panel."""

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
def test_wheel_ships_migrations_and_the_panel(tmp_path: Path) -> None:
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
    panel = ROOT / "src" / "vps" / "api" / "static" / "panel"
    shipped = {
        f"vps/{path.relative_to(ROOT / 'src' / 'vps').as_posix()}"
        for path in panel.rglob("*")
        if path.is_file()
    }
    assert "vps/api/static/panel/index.html" in shipped
    assert shipped <= names, sorted(shipped - names)


def _readme_block(marker: str) -> str:
    """The fenced Python block of the README whose first line is `marker`."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"```python\n{marker}\n") + len("```python\n")
    return readme[start : readme.index("```", start)]


@pytest.mark.slow
def test_the_readme_emulator_example_runs_as_written(tmp_path: Path) -> None:
    """A client developer's test, as the README shows it, with the plugin found through its
    entry point (as in any project that installed vps)."""
    (tmp_path / "test_my_tool.py").write_text(_readme_block("# test_my_tool.py"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
