"""`scalelab capacity`: per resource level, the highest offered rate the system sustains.

Each level (say, a worker count) gets its own binary search (`search.py`)
between 0 and an upper bound (the bare inference rate, or `--max-rate`);
each probe is an ordinary run, kept on disk and listed in the sweep's
sweep.json like a sweep cell, so re-running the same command reuses every
probe that finished. The result is a table (capacity, the lowest failing
rate, J/frame at capacity, scaling efficiency), written to capacity.parquet,
and its inverse, "demand": the fewest workers for a given rate.

With `--knee` each level first gets one step-load run whose knee bounds its
search (`knee.py`); the table says which bounds came from a knee run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from scalelab.sweep.execute import SweepProgress, refresh_tables, run_cell
from scalelab.sweep.grid import Cell
from scalelab.sweep.judge import CRITERIA, Judgement, judge
from scalelab.sweep.knee import (
    FROM_UPPER,
    Bounds,
    KneeSettings,
    bounded_search,
    knee_bounds,
)
from scalelab.sweep.plan import Plan
from scalelab.sweep.search import SearchInterrupted, SearchResult, probes_needed
from scalelab.sweep.state import SweepState

RATE_KEY = "load.rate"
CAPACITY_FILE = "capacity.parquet"


@dataclass
class Settings:
    resolution: float
    tolerance: float
    bounds: dict[str, float]
    """Upper bound per level value (as written in the grid)."""
    floor: float = 0.0
    """A rate expected to be sustained, probed only when no bisection probe was."""
    knee: KneeSettings | None = None
    """Bound each level's search by the knee of one step-load run first (`--knee`)."""

    def most_runs(self, upper: float) -> int:
        """Runs a level with this upper bound needs at most (with a knee: if it holds)."""
        if self.knee is not None:
            return self.knee.most_runs(upper, self.resolution)
        return probes_needed(upper, self.resolution, self.floor)


@dataclass
class Level:
    key: str
    value: str
    result: SearchResult
    runs: dict[float, Path]
    bounds: Bounds


def run_capacity(
    plan: Plan, state: SweepState, settings: Settings, console: Console
) -> list[Level]:
    """Search every level in grid order; write capacity.parquet and sweep.json's `capacity`."""
    (key,) = plan.vary
    total = sum(settings.most_runs(b) for b in settings.bounds.values())
    levels = []
    with SweepProgress(console, total, plan) as progress:
        for value in plan.vary[key]:
            levels.append(_search_level(plan, state, settings, key, value, console, progress))
            _write(plan, state, settings, levels)
    return levels


def _search_level(
    plan: Plan,
    state: SweepState,
    settings: Settings,
    key: str,
    value: str,
    console: Console,
    progress: SweepProgress,
) -> Level:
    runs: dict[float, Path] = {}

    def sustains(rate: float) -> bool:
        cell = Cell(((key, value), (RATE_KEY, f"{rate:g}")))
        if not state.done(cell):
            status = run_cell(plan, state, cell, console)
            if status == "aborted":
                raise SearchInterrupted(cell.key)
            progress.advance(state)
        run_dir = Path(state.entry(cell)["run_dir"])
        runs[rate] = run_dir
        verdict = judge(run_dir, settings.tolerance)
        state.update(cell, sustained=verdict.sustained, judgement=_explain(verdict))
        _say(console, key, value, rate, verdict)
        return verdict.sustained

    upper = settings.bounds[value]
    bounds = Bounds(settings.floor, upper, FROM_UPPER)
    if settings.knee is not None:
        bounds, ran = knee_bounds(
            plan,
            state,
            (key, value),
            settings.knee,
            console,
            upper=upper,
            resolution=settings.resolution,
            floor=settings.floor,
        )
        if ran:
            progress.advance(state)
        console.print(f"{key}={value}: {bounds.note}")
    result = bounded_search(sustains, bounds, upper, settings.resolution, settings.floor)
    return Level(key, value, result, runs, bounds)


def _explain(verdict: Judgement) -> str:
    return "; ".join(verdict.reasons) or "sustained"


def _say(console: Console, key: str, value: str, rate: float, verdict: Judgement) -> None:
    mark = "[green]sustained[/green]" if verdict.sustained else "[red]not sustained[/red]"
    console.print(f"probe {key}={value} at {rate:g} msg/s: {mark} {_explain(verdict)}")


def _write(plan: Plan, state: SweepState, settings: Settings, levels: list[Level]) -> None:
    table = capacity_table(levels)
    table.to_parquet(plan.dir / CAPACITY_FILE, index=False)
    state.data["capacity"] = {
        "key": plan.params[0],
        "resolution": settings.resolution,
        "tolerance": settings.tolerance,
        "floor": settings.floor,
        "upper_bounds": settings.bounds,
        "knee": asdict(settings.knee) if settings.knee else None,
        "criteria": CRITERIA.format(tolerance=settings.tolerance),
        "levels": table.to_dict(orient="records"),
    }
    state.save()
    refresh_tables(plan, state)


def capacity_table(levels: list[Level]) -> pd.DataFrame:
    """One row per level: capacity, lowest failing rate, J/frame at capacity, efficiency."""
    rows: list[dict[str, Any]] = []
    for level in levels:
        result = level.result
        at = level.runs.get(result.capacity) if result.capacity is not None else None
        rows.append(
            {
                "workers": float(level.value),
                "capacity": result.capacity,
                "first_failing": result.first_failing,
                "joules_per_frame": _joules(at),
                "capacity_run": at.name if at else None,
                "probes": len(result.probes),
                "lower_bound": level.bounds.lower,
                "upper_bound": level.bounds.upper,
                "bounds_from": level.bounds.source,
                "knee_run": level.bounds.knee_run,
                "note": "; ".join(n for n in (level.bounds.note, result.note) if n),
            }
        )
    table = pd.DataFrame(rows)
    table["efficiency"] = _efficiency(table)
    return table


def _efficiency(table: pd.DataFrame) -> list[float | None]:
    """Capacity per unit of resource, relative to the smallest level with a capacity."""
    known = table.dropna(subset=["capacity"])
    if known.empty:
        return [None] * len(table)
    base = known.iloc[0]
    per_unit = base["capacity"] / base["workers"]
    return [
        None if pd.isna(row.capacity) else row.capacity / row.workers / per_unit
        for row in table.itertuples()
    ]


def demand(table: pd.DataFrame, rate: float) -> float | None:
    """The fewest workers whose capacity reaches `rate` (None: no level does)."""
    enough = table[table["capacity"].fillna(-1) >= rate]
    return float(enough["workers"].min()) if not enough.empty else None


def _joules(run_dir: Path | None) -> float | None:
    if run_dir is None:
        return None
    import json

    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        value = summary["energy"]["load"]["joules_per_frame"]
        return float(value) if value is not None else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
