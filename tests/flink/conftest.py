"""Flink tests: each one is a short experiment on a real Flink cluster and a real broker.

They need `make flink` (the Flink jars and scalelab's jobs jar); without them they skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scalelab.platform.local.flink import flink_lib_dir

REPO = Path(__file__).resolve().parents[2]
JOBS_JAR = REPO / "flink" / "target" / "scalelab-flink-jobs.jar"
DRIVER = Path(__file__).with_name("drive.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not list(flink_lib_dir().glob("flink-runtime-*.jar")) or not JOBS_JAR.is_file():
        skip = pytest.mark.skip(reason="Flink jars or jobs jar missing: run `make flink`")
        for item in items:
            if "tests/flink" in str(item.fspath):
                item.add_marker(skip)


def run_flink(spec: Path, *overrides: str) -> tuple[Path, dict[str, Any]]:
    """One run in a subprocess; returns its directory and run.json."""
    result = subprocess.run(
        [sys.executable, str(DRIVER), str(spec), *overrides],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    return run_dir, json.loads((run_dir / "run.json").read_text())


def recorded_pids() -> list[str]:
    return [p.stem for p in (Path(os.environ["SCALELAB_HOME"]) / "pids").glob("*.json")]
