"""`scalelab capacity --knee` end to end on the quickstart pipeline with one worker.

One knee run climbs 8, 16, 24, 32 msg/s in 10 s steps (after a 2 s warmup);
one worker on a small machine saturates at some step, so the knee bounds the
search to one step (8 msg/s wide; on a busy machine where even 8 msg/s
saturates, from the 1 msg/s floor to 8). At a 4 msg/s resolution the plain
search from 32 msg/s needs 1 + log2(32/4) = 4 probes; within one step at
most 1 + log2(8/4) + 1 = 3 (the last for the lower bound). What is
checked: the knee run is kept and listed in sweep.json, every probe lies
within the knee's bounds and there are fewer probes (unless a probe proved a
bound wrong: a worker just under 8 msg/s can keep up for a 10 s step and not
for a whole probe; then the search goes past that bound and says so), and the
capacity is bracketed by the probe runs' own summaries (as in
test_capacity_cli.py).
The spec is renamed so this search has its own sweep directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from scalelab.sweep.search import probes_needed

from .cli import recorded_pids, scalelab
from .test_capacity_cli import QUICKSTART, SHORT, run_dirs, summary_at

pytestmark = pytest.mark.e2e
UPPER, RESOLUTION, STEPS = 32.0, 4.0, 4


def knee_args() -> list[str]:
    args = ["capacity", QUICKSTART, "--vary", "workload.workers=1", "--slo", "latency_p99=2s"]
    args += ["--max-rate", f"{UPPER:g}", "--min-rate", "1", "--resolution", f"{RESOLUTION:g}"]
    args += ["--knee", "--knee-steps", str(STEPS), "--knee-step", "10"]
    for item in [*SHORT, "name=quickstart-knee"]:
        args += ["--set", item]
    return args


def knee_entry(state: dict[str, Any]) -> dict[str, Any]:
    (entry,) = state["knee"].values()
    return dict(entry)


def test_a_knee_run_bounds_the_capacity_search_of_one_worker() -> None:
    earlier = run_dirs()  # other tests' runs share the session's runs directory
    result = scalelab(*knee_args(), timeout=590)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    (sweep_dir,) = (Path(os.environ["SCALELAB_RUNS"]) / "sweeps").glob("quickstart-knee-capacity-*")
    state = json.loads((sweep_dir / "sweep.json").read_text())
    (row,) = pd.read_parquet(sweep_dir / "capacity.parquet").to_dict(orient="records")

    # The knee run is kept on disk, with its per-step table, and listed apart from the probes.
    knee = knee_entry(state)
    knee_dir = Path(knee["run_dir"])
    assert knee["status"] == "succeeded"
    assert knee_dir.name in {path.name for path in run_dirs() - earlier}
    steps = json.loads((knee_dir / "summary.json").read_text())["steps"]
    assert [s["step"] for s in steps] == ["1", "2", "3", "4"]
    assert knee["rates"] == [8.0, 16.0, 24.0, 32.0]
    assert any(s["saturated"] for s in steps), steps  # 32 msg/s is beyond one worker
    assert row["bounds_from"] == "knee run" and row["knee_run"] == knee["run_id"], row
    lower, upper = row["lower_bound"], row["upper_bound"]
    assert (lower, upper) == (knee["lower"], knee["upper"]) and upper - lower <= UPPER / STEPS

    # Every probe within the knee's bounds, and fewer of them than the plain search needs;
    # unless a probe proved a bound wrong (a 10 s step can keep up at a rate a whole probe
    # cannot): then the search went past that bound (knee.bounded_search), and says so.
    sustained = {float(e["params"]["load.rate"]): e["sustained"] for e in state["runs"].values()}
    probed = sorted(sustained)
    assert row["probes"] == len(probed)
    assert len(run_dirs() - earlier) == row["probes"] + 1  # the probes and the knee run
    if "was not sustained: searched below" in row["note"]:
        assert sustained[lower] is False, (sustained, row["note"])
        assert all(1 <= rate <= upper for rate in probed), (probed, lower, upper)
        assert row["capacity"] is None or row["capacity"] < lower, row
    elif "was sustained: searched above it" in row["note"]:
        assert sustained[upper] is True, (sustained, row["note"])
        assert all(lower <= rate <= UPPER for rate in probed), (probed, lower, upper)
    else:
        assert all(lower <= rate <= upper for rate in probed), (probed, lower, upper, row["note"])
        assert row["probes"] <= probes_needed(upper, RESOLUTION, lower)
        assert row["probes"] < probes_needed(UPPER, RESOLUTION) == 4

    # The capacity is bracketed by real runs: sustained at it, not within the resolution above.
    capacity, failing = row["capacity"], row["first_failing"]
    assert capacity is not None and failing is not None and capacity < failing, row
    assert failing - capacity <= RESOLUTION, row
    kept_up = summary_at(state, capacity)
    assert kept_up["verdict"]["slo_met"] is True
    assert kept_up["accounting"]["lost"] == 0
    # A steady state: the verdict found no growing lag (nor any other reason). Completed
    # throughput is not compared with the rate here: with 8 s of load and a p50 of 1-2 s
    # near capacity, a fifth of the window's messages complete after it (seen: 10.0 of 12).
    assert kept_up["verdict"]["valid"] is True, kept_up["verdict"]
    above = summary_at(state, failing)
    fell_behind = above["throughput"] < 0.85 * above["rate"]["target_rate"]
    lag_growing = any(
        reason.startswith("consumer lag still growing") for reason in above["verdict"]["reasons"]
    )
    assert above["verdict"]["slo_met"] is False or fell_behind or lag_growing, above["verdict"]
    assert f"knee run {knee['run_id']}" in output
    assert recorded_pids() == {}, "a process was left behind"

    before = run_dirs()
    again = scalelab(*knee_args(), timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_dirs() == before  # the knee run and every probe reused, none run again
    assert pd.read_parquet(sweep_dir / "capacity.parquet")["capacity"].tolist() == [capacity]
