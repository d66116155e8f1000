"""`scalelab capacity` end to end on the quickstart pipeline with one worker.

The search is wide and coarse (20 msg/s down to 1 msg/s, resolution 10 msg/s)
so it needs two or three short runs whatever the machine's load. What is
checked is the capacity's neighbourhood, from the probe runs' own summaries
(not from the search's table): the run at the reported rate met its SLO and
kept up, and the run at the lowest failing rate, above it by at most the resolution, did not.
Running the same command again reuses every probe.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from .cli import REPO, recorded_pids, runs, scalelab

pytestmark = pytest.mark.e2e
QUICKSTART = str(REPO / "examples" / "quickstart.yaml")
SHORT = [
    "load.duration=10s",
    "load.warmup=2s",
    "workload.drain_timeout=20s",
    "slo.min_load_duration=5s",
    "slo.min_samples=5",
    "slo.max_rate_error=0.2",
    "slo.max_foreign_cpu=1",
]


def capacity_args() -> list[str]:
    args = ["capacity", QUICKSTART, "--vary", "workload.workers=1", "--slo", "latency_p99=2s"]
    args += ["--max-rate", "20", "--min-rate", "1", "--resolution", "10", "--demand", "1"]
    for item in SHORT:
        args += ["--set", item]
    return args


def run_dirs() -> set[Path]:
    return {path for path in runs() if (path / "run.json").is_file()}


def summary_at(state: dict[str, Any], rate: float) -> dict[str, Any]:
    (entry,) = [e for e in state["runs"].values() if float(e["params"]["load.rate"]) == rate]
    return dict(json.loads((Path(entry["run_dir"]) / "summary.json").read_text()))


def test_capacity_of_one_worker_is_bracketed_by_real_runs() -> None:
    earlier = run_dirs()  # other tests' runs share the session's runs directory
    result = scalelab(*capacity_args(), timeout=590)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    (sweep_dir,) = (Path(os.environ["SCALELAB_RUNS"]) / "sweeps").glob("quickstart-capacity-*")
    state = json.loads((sweep_dir / "sweep.json").read_text())
    table = pd.read_parquet(sweep_dir / "capacity.parquet")
    (row,) = table.to_dict(orient="records")
    capacity, failing = row["capacity"], row["first_failing"]
    # A binary search to a 10 msg/s resolution: the lowest failing rate lies above the
    # capacity and within the resolution of it (which rates these are depends on the machine).
    assert capacity is not None and failing is not None and capacity < failing, row
    assert failing - capacity <= 10, row
    assert len(run_dirs() - earlier) == row["probes"] == len(state["runs"])

    kept_up = summary_at(state, capacity)
    assert kept_up["verdict"]["slo_met"] is True
    assert kept_up["accounting"]["lost"] == 0
    assert kept_up["throughput"] >= 0.85 * kept_up["rate"]["target_rate"]

    above = summary_at(state, failing)
    fell_behind = above["throughput"] < 0.85 * above["rate"]["target_rate"]
    # Just above capacity the queue may grow slowly enough to keep the p99 under the SLO
    # for a short run: the verdict then names the growing lag (seen on a quiet machine).
    lag_growing = any(
        reason.startswith("consumer lag still growing") for reason in above["verdict"]["reasons"]
    )
    assert above["verdict"]["slo_met"] is False or fell_behind or lag_growing, above["verdict"]
    assert "demand: 1 msg/s needs workload.workers = 1" in output
    assert recorded_pids() == {}, "a process was left behind"

    before = run_dirs()
    again = scalelab(*capacity_args(), timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_dirs() == before  # every probe reused, none run again
    assert pd.read_parquet(sweep_dir / "capacity.parquet")["capacity"].tolist() == [capacity]


def test_capacity_refuses_to_vary_the_rate_it_searches() -> None:
    result = scalelab("capacity", QUICKSTART, "--vary", "load.rate=1,2", "--max-rate", "4")
    assert result.returncode == 2
    assert "load.rate" in result.stderr and "the search chooses the rate" in result.stderr
