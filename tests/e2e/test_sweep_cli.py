"""`scalelab sweep` end to end: a real two-cell sweep of the quickstart, interrupted with
Ctrl-C and resumed. What a user relies on: the interrupted run is recorded, the resumed
sweep does not redo the finished cell, and the sweep table says what each run's own
summary says. Runs are short (10 s of load) and at low rates, so the suite stays quick.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from scalelab.platform.process import wait_until
from scalelab.sweep import open_sweep

from .cli import REPO, recorded_pids, runs, scalelab, spawn

pytestmark = pytest.mark.e2e
QUICKSTART = str(REPO / "examples" / "quickstart.yaml")
SHORT = [
    "workload.workers=1",
    "load.duration=10s",
    "load.warmup=2s",
    "workload.drain_timeout=20s",
    "slo.min_load_duration=5s",
    "slo.min_samples=5",
    "slo.max_rate_error=0.2",
    "slo.max_foreign_cpu=1",
]
"""A short run that still gets a verdict (evidence thresholds lowered for 8 s of load)."""


def sweep_args(*extra: str) -> list[str]:
    args = ["sweep", QUICKSTART, "--vary", "load.rate=1,2", "--seed", "4", *extra]
    for item in SHORT:
        args += ["--set", item]
    return args


def sweep_state() -> tuple[Path, dict[str, Any]] | None:
    # Only this file's sweep: the capacity tests' searches share the runs directory
    # ("quickstart-capacity-…" sorts before it).
    found = sorted((Path(_runs_root()) / "sweeps").glob("*-sweep-*/sweep.json"))
    if not found:
        return None
    return found[0].parent, json.loads(found[0].read_text())


def _runs_root() -> str:
    import os

    return os.environ["SCALELAB_RUNS"]


def run_dirs() -> set[Path]:
    return {path for path in runs() if (path / "run.json").is_file()}


def statuses(state: dict[str, Any]) -> list[str]:
    return sorted(entry["status"] for entry in state["runs"].values())


def test_a_bad_value_stops_the_sweep_before_any_run() -> None:
    before = run_dirs()  # other tests' runs share the session's runs directory
    result = scalelab("sweep", QUICKSTART, "--vary", "workload.workers=1,0")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "workload.workers" in result.stderr and "greater than or equal to 1" in result.stderr
    assert run_dirs() == before


def test_sweep_is_interrupted_then_resumed_without_redoing_finished_runs() -> None:
    proc = spawn(*sweep_args())

    def second_started() -> bool:
        found = sweep_state()
        return proc.poll() is not None or (
            found is not None and statuses(found[1]) == ["running", "succeeded"]
        )

    assert wait_until(second_started, 400), proc.communicate()[0]
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 130, output
    assert "run the same command again to resume" in output
    sweep_dir, state = sweep_state()  # type: ignore[misc]
    assert state["status"] == "interrupted"
    (finished,) = [e for e in state["runs"].values() if e["status"] == "succeeded"]
    (stopped,) = [e for e in state["runs"].values() if e["status"] != "succeeded"]
    assert stopped["status"] in ("aborted", "pending")  # pending: stopped before its run began
    before = run_dirs()
    assert recorded_pids() == {}, "a process was left behind"

    result = scalelab(*sweep_args(), timeout=400)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "resuming: 1 of 2 runs already succeeded, skipped" in output
    _, state = sweep_state()  # type: ignore[misc]
    assert state["status"] == "finished" and statuses(state) == ["succeeded", "succeeded"]
    assert state["runs"][_key(finished)]["run_id"] == finished["run_id"]  # not redone
    (new_run,) = run_dirs() - before
    assert new_run.name == state["runs"][_key(stopped)]["run_id"]
    assert recorded_pids() == {}, "a process was left behind"
    _table_matches_the_runs(sweep_dir)


def _key(entry: dict[str, Any]) -> str:
    return f"{entry['config']}#{entry['repetition']}"


def _table_matches_the_runs(sweep_dir: Path) -> None:
    table = open_sweep(sweep_dir.name)
    assert sorted(table["load.rate"]) == [1, 2] and len(table) == 2
    for row in table.to_dict(orient="records"):
        summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
        assert row["offered_rate"] == summary["rate"]["target_rate"] == row["load.rate"]
        assert row["throughput"] == summary["throughput"]
        assert row["latency_p99_s"] == summary["latency_s"]["p99"]
        assert row["produced"] == summary["accounting"]["produced"]
        assert row["verdict"] == summary["verdict"]["result"]
    report = (sweep_dir / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 2
    assert all(row["run_id"] in report for row in table.to_dict(orient="records"))
