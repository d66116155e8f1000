"""`scalelab status --json` reads the pid files of real processes, for scripts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from scalelab.cli.main import app


def test_status_json_names_each_process_alive_or_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALELAB_HOME", str(tmp_path))
    (tmp_path / "pids").mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        entry = {
            "name": "broker",
            "pid": sleeper.pid,
            "create_time": psutil.Process(sleeper.pid).create_time(),
            "argv0": "sleep",
            "started": "2026-11-28T10:00:00.000Z",
            "run_id": "20261128T100000Z-up-abcdef",
            "ports": {"bootstrap": 9092},
        }
        (tmp_path / "pids" / "broker.json").write_text(json.dumps(entry))
        gone = {**entry, "name": "prometheus", "pid": sleeper.pid, "create_time": 1.0}
        (tmp_path / "pids" / "prometheus.json").write_text(json.dumps(gone))
        result = CliRunner().invoke(app, ["status", "--json"])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stack"] is None
    states = {p["name"]: p for p in data["processes"]}
    assert states["broker"]["alive"] is True and states["broker"]["ports"] == {"bootstrap": 9092}
    assert states["prometheus"]["alive"] is False  # pid reused by another process
    assert states["broker"]["run_id"] == "20261128T100000Z-up-abcdef"
