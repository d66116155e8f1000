"""`scalelab capacity --knee`: the knee of one configuration from one step-load run.

Per level, one run climbs in N equal steps from upper/N to the search's upper
bound, each step `step_s` seconds inside the load window (the first step is
lengthened by the warmup). Its per-step table (summary.json `steps`, built by
`analysis/steps.py`) marks a step *saturated* when it completed clearly fewer
messages than it was offered. The knee lies between the last unsaturated step
before the first saturated one and that saturated step: those two rates bound
the binary search, which then needs about log2(N) fewer probes.

No step saturated: the normal search from the upper bound. Every step
saturated: the search below the first step. Where a constant-rate probe
proves a knee bound wrong (the saturated step's rate sustained, or the
unsaturated one's not), the search widens to the rest of the interval.

A step shorter than `MIN_STEP_S` holds too few messages to judge: the
saturation test needs at least 5 messages and 5 % short. The knee run is
kept on disk and listed in sweep.json's `knee`, keyed by level and steps, so
re-running the command reuses it as it reuses every probe.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from ruamel.yaml import YAML, YAMLError

from scalelab.run.runner import run_experiment
from scalelab.spec.loader import load_spec
from scalelab.sweep.grid import Cell
from scalelab.sweep.plan import Plan
from scalelab.sweep.search import (
    SearchInterrupted,
    SearchResult,
    combine,
    probes_needed,
    round_rate,
    search,
)
from scalelab.sweep.state import DONE, SweepState, now

MIN_STEP_S = 10.0
DEFAULT_STEP_S = 15.0
DEFAULT_STEPS = 8
KNEE_RUNS = "knee"
"""sweep.json's section of knee runs, beside `runs` (the probes)."""
FROM_KNEE = "knee run"
FROM_UPPER = "upper bound"


@dataclass(frozen=True)
class KneeSettings:
    steps: int = DEFAULT_STEPS
    step_s: float = DEFAULT_STEP_S

    def rates(self, upper: float, resolution: float) -> list[float]:
        """N equal steps from upper/N to upper, on the search's grid of probe rates."""
        rates = (round_rate(upper * i / self.steps, resolution) for i in range(1, self.steps + 1))
        return sorted({rate for rate in rates if rate > 0})

    def most_runs(self, upper: float, resolution: float) -> int:
        """The knee run, then a search over one step: its bound, the halvings, its floor."""
        return 2 + probes_needed(upper / self.steps, resolution)


def knee_load(load: dict[str, Any], rates: list[float], step_s: float) -> dict[str, Any]:
    """The knee run's `load:` section: the spec's own (unit, producers, ceiling, warmup) with
    one step per rate, the first lengthened by the warmup so every step is judged `step_s`."""
    warmup = float(load.get("warmup") or 0.0)
    steps = [
        {"rate": rate, "duration": step_s + (warmup if index == 0 else 0.0)}
        for index, rate in enumerate(rates)
    ]
    common = {k: v for k, v in load.items() if k not in ("profile", "rate", "steps")}
    return {**common, "profile": "step", "steps": steps, "duration": warmup + len(rates) * step_s}


@dataclass(frozen=True)
class Knee:
    lower: float
    """The last unsaturated step's rate before the first saturated one (0: none)."""
    upper: float | None
    """The first saturated step's rate (None: no step saturated)."""
    top: float
    """The highest step's rate."""
    run_id: str


def find_knee(rows: list[dict[str, Any]], rates: list[float]) -> tuple[float, float | None]:
    """(last unsaturated rate, first saturated rate) of a step table labelled 1..N by `rates`."""
    lower = 0.0
    for row in rows:
        rate = rates[int(row["step"]) - 1]
        if row.get("saturated"):
            return lower, rate
        lower = rate
    return lower, None


def read_knee(run_dir: Path) -> Knee | None:
    """The knee of a step run, from its summary.json step table and its spec.yaml's step
    rates; None when either is missing."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        spec = YAML(typ="safe").load((run_dir / "spec.yaml").read_text())
        rates = [float(step["rate"]) for step in spec["load"]["steps"]]
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError, YAMLError, KeyError, TypeError):
        return None
    rows = summary.get("steps") or []
    if not rows or not rates:
        return None
    lower, upper = find_knee(rows, rates)
    return Knee(lower, upper, max(rates), str(record.get("id") or run_dir.name))


@dataclass(frozen=True)
class Bounds:
    lower: float
    upper: float
    source: str
    """`knee run` or `upper bound` (the bare inference bound or --max-rate)."""
    note: str = ""
    knee_run: str | None = None


def bounds_for(knee: Knee | None, upper: float, floor: float, failed: str = "no knee") -> Bounds:
    """The search's interval for a level: the knee's where it found one, else [floor, upper]."""
    if knee is None:
        return Bounds(floor, upper, FROM_UPPER, f"{failed}: searched from the upper bound")
    if knee.upper is None:
        note = f"no step of knee run {knee.run_id} saturated (up to {knee.top:g} msg/s)"
        return Bounds(
            floor, upper, FROM_UPPER, f"{note}: searched from the upper bound", knee.run_id
        )
    if knee.lower <= 0:
        note = f"knee run {knee.run_id}: every step saturated: searched below the first"
        return Bounds(floor, knee.upper, FROM_KNEE, f"{note} ({knee.upper:g} msg/s)", knee.run_id)
    note = (
        f"knee run {knee.run_id}: {knee.lower:g} msg/s kept up, {knee.upper:g} msg/s "
        "saturated: searched between them"
    )
    return Bounds(max(knee.lower, floor), knee.upper, FROM_KNEE, note, knee.run_id)


def bounded_search(
    sustains: Callable[[float], bool],
    bounds: Bounds,
    upper: float,
    resolution: float,
    floor: float = 0.0,
) -> SearchResult:
    """Search within `bounds`; where a probe proves a knee bound wrong, widen past it to the
    rest of [floor, upper]."""
    result = search(sustains, bounds.upper, resolution, bounds.lower)
    if bounds.source != FROM_KNEE:
        return result
    if result.first_failing is None and bounds.upper < upper:
        note = f"the knee's saturated {bounds.upper:g} msg/s was sustained: searched above it"
        return combine(result, search(sustains, upper, resolution, bounds.upper), note)
    if result.capacity is None and bounds.lower > floor:
        note = f"the knee's unsaturated {bounds.lower:g} msg/s was not sustained: searched below"
        return combine(result, search(sustains, bounds.lower, resolution, floor), note)
    return result


def knee_bounds(
    plan: Plan,
    state: SweepState,
    level: tuple[str, str],
    settings: KneeSettings,
    console: Console,
    *,
    upper: float,
    resolution: float,
    floor: float,
) -> tuple[Bounds, bool]:
    """A level's search interval from its knee run, and whether that run ran now (it is
    reused when sweep.json has it succeeded)."""
    rates = settings.rates(upper, resolution)
    name = Cell((level, ("knee", "/".join(f"{r:g}" for r in rates)))).config
    name += f"@{settings.step_s:g}s"
    entry = dict(state.data.setdefault(KNEE_RUNS, {}).get(name) or {})
    ran = not _reusable(entry)
    if ran:
        entry = _run(plan, state, level, name, rates, settings.step_s, console)
    if entry["status"] == "aborted":
        raise SearchInterrupted(name)
    knee = read_knee(Path(entry["run_dir"])) if entry["status"] == DONE else None
    why = "has no step table" if entry["status"] == DONE else entry["status"]
    failed = f"knee run {entry.get('run_id')} {why}"
    bounds = bounds_for(knee, upper, floor, failed)
    entry.update(lower=bounds.lower, upper=bounds.upper, bounds_from=bounds.source)
    _record(state, name, {**entry, "note": bounds.note})
    return bounds, ran


def _reusable(entry: dict[str, Any]) -> bool:
    """The knee run succeeded and its directory is still there."""
    run_dir = entry.get("run_dir")
    return entry.get("status") == DONE and bool(run_dir) and Path(str(run_dir)).is_dir()


def _run(
    plan: Plan,
    state: SweepState,
    level: tuple[str, str],
    name: str,
    rates: list[float],
    step_s: float,
    console: Console,
) -> dict[str, Any]:
    key, value = level
    base = plan.spec_for(Cell((level,)))
    load = knee_load(base.load.model_dump(mode="json"), rates, step_s)
    spec = load_spec(
        plan.spec_path, [*plan.overrides, f"{key}={value}", f"load={json.dumps(load)}"]
    )
    console.rule(f"knee run {key}={value}: {len(rates)} steps of {step_s:g} s")
    started = time.monotonic()
    entry = {"config": f"{key}={value}", "params": {key: value}, "rates": rates, "step_s": step_s}
    entry.update(status="running", started=now(), run_id=None, run_dir=None)
    _record(state, name, entry)
    record, run_dir = run_experiment(spec, plan.spec_path, console)
    entry.update(status=record.status, run_id=record.id, run_dir=str(run_dir), ended=now())
    entry["seconds"] = round(time.monotonic() - started, 1)
    _record(state, name, entry)
    return entry


def _record(state: SweepState, name: str, entry: dict[str, Any]) -> None:
    state.data.setdefault(KNEE_RUNS, {})[name] = dict(entry)
    state.save()
