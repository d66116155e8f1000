"""Drive the real `scalelab` command in a subprocess, in the test session's isolated dirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
SCALELAB = [sys.executable, "-m", "scalelab.cli"]


def scalelab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCALELAB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    )


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SCALELAB, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    )


def pid_dir() -> Path:
    return Path(os.environ["SCALELAB_HOME"]) / "pids"


def recorded_pids() -> dict[str, int]:
    return {p.stem: json.loads(p.read_text())["pid"] for p in pid_dir().glob("*.json")}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def runs() -> list[Path]:
    """Run directories, oldest first (run ids begin with their UTC start time); the
    `sweeps/` and `comparisons/` folders beside them are not runs."""
    root = Path(os.environ["SCALELAB_RUNS"])
    return sorted(p for p in root.iterdir() if p.name[:1].isdigit()) if root.is_dir() else []


def run_json(run_dir: Path) -> dict[str, object]:
    return dict(json.loads((run_dir / "run.json").read_text()))
