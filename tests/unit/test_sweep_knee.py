"""`scalelab capacity --knee`: the knee from a real per-step table, the bounds it gives the
search, and a whole knee-bounded search over run directories in the exact on-disk format
(`analysis.synthetic`: summaries by the real `summarise`, verdicts by the real `verdict`)."""

from __future__ import annotations

import inspect
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from scalelab.analysis.steps import load_plan
from scalelab.analysis.synthetic import Synthetic, write_run
from scalelab.analysis.verdict import verdict
from scalelab.cli import sweep_cmd
from scalelab.spec.loader import load_spec
from scalelab.sweep import execute, knee
from scalelab.sweep.capacity import Settings, run_capacity
from scalelab.sweep.capacity_cli import run_capacity_command
from scalelab.sweep.knee import (
    DEFAULT_STEP_S,
    DEFAULT_STEPS,
    FROM_KNEE,
    FROM_UPPER,
    MIN_STEP_S,
    Bounds,
    KneeSettings,
    bounded_search,
    bounds_for,
    knee_load,
    read_knee,
)
from scalelab.sweep.plan import plan_sweep
from scalelab.sweep.search import probes_needed, search
from scalelab.sweep.state import SweepState

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
SHORT = ["load.duration=10s", "load.warmup=2s"]
RATES = [4.0, 8.0, 12.0, 16.0]
STEP_S = 10


def step_run(tmp_path: Path, capacity: float, name: str = "knee") -> Path:
    """Four 10 s steps after a 2 s warmup, against one server completing `capacity` msg/s."""
    steps = [(rate, STEP_S + (2 if i == 0 else 0)) for i, rate in enumerate(RATES)]
    run = Synthetic(
        run_id=name, steps=steps, warmup_s=2, load_s=4 * STEP_S, rate=10.0, capacity=capacity
    )
    return write_run(tmp_path / name, run)


def saturation(run_dir: Path) -> list[bool]:
    return [row["saturated"] for row in json.loads((run_dir / "summary.json").read_text())["steps"]]


def test_the_knee_lies_between_the_last_step_that_kept_up_and_the_first_saturated(
    tmp_path: Path,
) -> None:
    run_dir = step_run(tmp_path, capacity=10.5)
    assert saturation(run_dir) == [False, False, True, True]
    found = read_knee(run_dir)
    assert found is not None
    assert (found.lower, found.upper, found.top, found.run_id) == (8.0, 12.0, 16.0, "knee")
    bounds = bounds_for(found, upper=16.0, floor=0.0)
    assert (bounds.lower, bounds.upper, bounds.source) == (8.0, 12.0, FROM_KNEE)
    assert bounds.knee_run == "knee" and "8 msg/s kept up, 12 msg/s saturated" in bounds.note


def test_no_saturated_step_falls_back_to_the_search_from_the_upper_bound(tmp_path: Path) -> None:
    found = read_knee(step_run(tmp_path, capacity=100.0))
    assert found is not None and (found.lower, found.upper) == (16.0, None)
    bounds = bounds_for(found, upper=16.0, floor=1.0)
    assert (bounds.lower, bounds.upper, bounds.source) == (1.0, 16.0, FROM_UPPER)
    assert "no step of knee run knee saturated" in bounds.note


def test_every_step_saturated_searches_below_the_first(tmp_path: Path) -> None:
    run_dir = step_run(tmp_path, capacity=3.0)
    assert saturation(run_dir) == [True] * 4
    found = read_knee(run_dir)
    assert found is not None and (found.lower, found.upper) == (0.0, 4.0)
    bounds = bounds_for(found, upper=16.0, floor=0.0)
    assert (bounds.lower, bounds.upper, bounds.source) == (0.0, 4.0, FROM_KNEE)


def test_a_run_without_a_step_table_has_no_knee(tmp_path: Path) -> None:
    assert read_knee(write_run(tmp_path / "flat", Synthetic())) is None
    assert read_knee(tmp_path / "absent") is None
    bounds = bounds_for(None, upper=16.0, floor=0.0, failed="knee run x failed")
    assert (bounds.lower, bounds.upper, bounds.source) == (0.0, 16.0, FROM_UPPER)


def threshold(capacity: float) -> Any:
    return lambda rate: rate <= capacity


def test_the_knee_bounded_search_needs_fewer_probes_and_stays_within_the_knee() -> None:
    bounds = Bounds(8.0, 12.0, FROM_KNEE)
    result = bounded_search(threshold(10.5), bounds, upper=16.0, resolution=1.0)
    plain = search(threshold(10.5), 16.0, 1.0)
    assert (result.capacity, result.first_failing) == (plain.capacity, plain.first_failing)
    assert (result.capacity, result.first_failing) == (10.0, 11.0)
    assert all(8.0 <= rate <= 12.0 for rate, _ in result.probes)
    assert len(result.probes) <= probes_needed(12.0, 1.0, 8.0) < probes_needed(16.0, 1.0)
    assert len(result.probes) < len(plain.probes)


@pytest.mark.parametrize(("capacity", "note"), [(14.0, "searched above"), (5.0, "below")])
def test_a_knee_proved_wrong_by_a_probe_widens_the_search(capacity: float, note: str) -> None:
    bounds = Bounds(8.0, 12.0, FROM_KNEE)
    result = bounded_search(threshold(capacity), bounds, upper=16.0, resolution=1.0)
    assert result.capacity is not None and result.first_failing is not None
    assert result.capacity <= capacity < result.first_failing <= result.capacity + 1.0
    assert note in result.note
    assert len({rate for rate, _ in result.probes}) == len(result.probes)


def test_the_knee_runs_load_gives_every_step_its_seconds_inside_the_load_window() -> None:
    settings = KneeSettings(steps=4, step_s=10.0)
    assert settings.rates(16.0, 1.0) == RATES
    base = load_spec(QUICKSTART, SHORT).load.model_dump(mode="json")
    load = knee_load(base, RATES, settings.step_s)
    spec = load_spec(QUICKSTART, [*SHORT, f"load={json.dumps(load)}"])
    assert spec.load.profile == "step" and spec.load.duration == 42.0
    plan = load_plan({"load": spec.load.model_dump(mode="json")})
    assert plan is not None and plan.warmup == 2.0
    inside = [min(s.end_s, plan.duration) - max(s.start_s, plan.warmup) for s in plan.segments]
    assert inside == [10.0] * 4
    assert [s.nominal_rate for s in plan.segments] == RATES


class FakeRuns:
    """`run_experiment` writing synthetic runs of a system that completes `capacity` msg/s."""

    def __init__(self, tmp_path: Path, capacity: float):
        self.dir, self.capacity, self.loads = tmp_path / "runs", capacity, []

    def __call__(self, spec: Any, spec_path: Path, console: Console, repetition: int = 1) -> Any:
        load = spec.load
        self.loads.append(load.profile)
        name = f"run{len(self.loads)}"
        if load.profile == "step":
            run_dir = step_run(self.dir, self.capacity, name)
        else:
            run = Synthetic(
                run_id=name, rate=load.rate, warmup_s=2, load_s=10, capacity=self.capacity
            )
            run_dir = write_run(self.dir / name, run)
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["verdict"] = verdict(run_dir).to_dict()
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return SimpleNamespace(status="succeeded", id=name), run_dir


def test_a_knee_bounded_capacity_search_is_recorded_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALELAB_SWEEPS", str(tmp_path / "sweeps"))
    fake = FakeRuns(tmp_path, capacity=10.5)
    monkeypatch.setattr(knee, "run_experiment", fake)
    monkeypatch.setattr(execute, "run_experiment", fake)
    plan = plan_sweep(QUICKSTART, SHORT, ["workload.workers=1"], 1, 0, kind="capacity")
    knees = KneeSettings(steps=4, step_s=10.0)
    settings = Settings(2.0, 0.05, {"1": 16.0}, knee=knees)

    state = SweepState.open(plan.dir, plan.header())
    (level,) = run_capacity(plan, state, settings, wide(io.StringIO()))
    assert fake.loads == ["step", "constant", "constant"]
    assert (level.result.capacity, level.result.first_failing) == (10.0, 12.0)
    assert [rate for rate, _ in level.result.probes] == [12.0, 10.0]

    saved = json.loads((plan.dir / "sweep.json").read_text())
    (entry,) = saved["knee"].values()
    assert entry["status"] == "succeeded" and entry["run_id"] == "run1"
    assert (entry["lower"], entry["upper"], entry["bounds_from"]) == (8.0, 12.0, FROM_KNEE)
    assert len(saved["runs"]) == 2  # the probes; the knee run is listed apart
    (row,) = pd.read_parquet(plan.dir / "capacity.parquet").to_dict(orient="records")
    assert (row["lower_bound"], row["upper_bound"], row["bounds_from"]) == (8.0, 12.0, FROM_KNEE)
    assert row["knee_run"] == "run1" and row["probes"] == 2 and "knee run run1" in row["note"]
    assert saved["capacity"]["knee"] == {"steps": 4, "step_s": 10.0}

    out = io.StringIO()
    code = run_capacity_command(
        QUICKSTART, SHORT, ["workload.workers=1"], 2.0, 16.0, 0.0, 0.05, [], wide(out), knees
    )
    assert code == 0 and len(fake.loads) == 3  # the knee run and both probes reused
    printed = out.getvalue()
    assert "one knee run of 4 steps × 10 s" in printed and "(without --knee: 4)" in printed
    assert "8–12 (knee run)" in printed and "knee run run1: 8 msg/s kept up" in printed


def wide(out: io.StringIO) -> Console:
    return Console(file=out, width=200)


def test_the_commands_knee_defaults_are_the_librarys() -> None:
    params = inspect.signature(sweep_cmd.capacity).parameters
    assert params["knee_steps"].default == DEFAULT_STEPS
    assert params["knee_step"].default == DEFAULT_STEP_S >= MIN_STEP_S
