"""A small chaos run (bench/chaos.py) in CI: real processes, workers killed at random, a
simulator that fails some calls; every promise must hold afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_small_chaos_run_keeps_every_promise(tmp_path: Path) -> None:
    report_path = tmp_path / "chaos.json"
    args = [
        sys.executable,
        str(ROOT / "bench" / "chaos.py"),
        "--servers",
        "30",
        "--operations",
        "120",
        "--kills",
        "6",
        "--workers",
        "2",
        "--api-processes",
        "1",
        "--seed",
        "3",
        "--json",
        str(report_path),
    ]
    postgres = os.environ.get("VPS_TEST_DATABASE_URL")
    if postgres:
        args += ["--postgres", postgres]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert report_path.exists(), done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    broken = {key: value for key, value in report["violations"].items() if value}
    assert not broken, json.dumps(report, indent=1)
    assert report["worker_kills"] >= 6
    assert report["settle_seconds"] >= 0
    assert report["ok"] and done.returncode == 0
