"""A real saturating step run through the CLI: the figures a user would publish are what the
system served, counted independently from qos.parquet, and the verdict names the knee.

One worker with one ONNX thread serves on the order of 15 frames/s on an idle
2-core machine (less on a busy one). The second step offers 40 frames/s, far
past that, so it saturates whatever the machine's load; the first offers 2/s.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from .cli import recorded_pids, run_json, runs, scalelab

pytestmark = pytest.mark.e2e

SPEC = """
name: saturating-steps
description: One worker under 2 then 40 frames/s.
broker:
  partitions: 1
monitoring:
  scrape_interval: 1s
workload:
  kind: yolo
  model: yolov8n
  workers: 1
  threads: 1
  batch_size: 1
  drain_timeout: 5s
source:
  kind: synthetic
  width: 640
  height: 480
  encoding: jpeg
load:
  profile: step
  steps:
    - {rate: 2, duration: 15s}
    - {rate: 40, duration: 15s}
  duration: 30s
  warmup: 3s
slo:
  latency_p99: 1s
  min_load_duration: 10s
"""


def load_window(run_dir: Path) -> tuple[int, int]:
    (load,) = [p for p in run_json(run_dir)["phases"] if p["name"] == "load"]  # type: ignore[union-attr]
    return pd.Timestamp(load["start"]).value, pd.Timestamp(load["end"]).value


def served(run_dir: Path, window: tuple[int, int]) -> int:
    """Distinct message ids whose first completion lies in the load window."""
    qos = pq.read_table(run_dir / "qos.parquet").to_pandas()
    first = qos.groupby("id")["done_ns"].min()
    return int(((first >= window[0]) & (first < window[1])).sum())


def test_a_saturating_step_run_reports_what_completed_per_step_and_is_invalid(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "steps.yaml"
    spec.write_text(SPEC)
    before = set(runs())
    result = scalelab("run", str(spec), timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    (run_dir,) = set(runs()) - before
    assert recorded_pids() == {}, "a process was left behind"
    summary = json.loads((run_dir / "summary.json").read_text())

    window = load_window(run_dir)
    seconds = (window[1] - window[0]) / 1e9
    assert summary["throughput"] == pytest.approx(served(run_dir, window) / seconds, abs=2e-3)
    offered = summary["rate"]["target_rate"]
    assert offered == pytest.approx((2 * 12 + 40 * 15) / 27, rel=0.01)
    assert summary["throughput"] < 0.75 * offered

    first, second = summary["steps"]
    assert (first["step"], first["start_s"], first["end_s"]) == ("1", 3.0, 15.0)
    assert second["step"] == "2" and second["start_s"] == 15.0
    assert first["offered_rate"] == pytest.approx(2.0) and second["offered_rate"] == 40.0
    assert second["saturated"] and second["completed_rate"] < 0.75 * 40
    assert second["lag_end"] is not None and second["lag_end"] > first["lag_end"]

    verdict = summary["verdict"]
    assert verdict["result"] == "INVALID"
    (saturated,) = [r for r in verdict["reasons"] if r.startswith("saturated:")]
    assert re.search(r"step 2 \(offered 40\.00 msg/s, completed \d+\.\d\d msg/s\)", saturated)
    assert "per step (load phase)" in output and "saturated" in output
    assert re.search(r"throughput \(completed\) +│ \d+\.\d\d frames/s", output)
