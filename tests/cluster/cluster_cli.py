"""`scalelab run` of an example (examples/kubernetes.yaml unless named) on the real cluster,
through the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "kubernetes.yaml"


def run_cli(
    tmp_path: Path, *overrides: str, example: Path = EXAMPLE
) -> tuple[dict[str, Any], Path]:
    """The run's record and directory; fails the test unless the CLI made one run and exited 0."""
    env = {**os.environ, "SCALELAB_RUNS": str(tmp_path / "runs"), "COLUMNS": "200"}
    sets = [arg for override in overrides for arg in ("--set", override)]
    done = subprocess.run(
        [sys.executable, "-m", "scalelab.cli", "run", str(example), *sets],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env=env,
    )
    output = done.stdout[-3000:] + done.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").is_dir() else []
    assert len(runs) == 1, output
    record = json.loads((runs[0] / "run.json").read_text())
    assert done.returncode == 0, (record.get("errors"), output)
    return record, runs[0]
