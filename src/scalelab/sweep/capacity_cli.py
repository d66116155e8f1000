"""The `scalelab capacity` command's work: plan, bounds, search, table, report, demand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from scalelab.errors import ConfigError, SpecError, SpecProblem
from scalelab.spec.models import YoloWorkload
from scalelab.sweep import bare
from scalelab.sweep.capacity import (
    RATE_KEY,
    Settings,
    capacity_table,
    demand,
    run_capacity,
)
from scalelab.sweep.grid import VARY_SOURCE, Cell
from scalelab.sweep.knee import KneeSettings
from scalelab.sweep.plan import Plan, plan_sweep
from scalelab.sweep.report import write_report
from scalelab.sweep.search import SearchInterrupted, grid_points, probes_needed
from scalelab.sweep.state import SweepState


def run_capacity_command(
    spec_path: Path,
    overrides: Sequence[str],
    vary: Sequence[str],
    resolution: float,
    max_rate: float | None,
    min_rate: float,
    tolerance: float,
    rates: Sequence[float],
    console: Console,
    knee: KneeSettings | None = None,
) -> int:
    """Exit code: 0 searched every level, 130 interrupted (re-run to resume), 1 no capacity.

    `knee`: bound each level's search by one step-load run's knee first (`knee.py`).
    """
    plan = plan_sweep(spec_path, overrides, vary, 1, 0, kind="capacity")
    _check(plan)
    bounds = upper_bounds(plan, max_rate, console)
    settings = Settings(resolution, tolerance, bounds, min_rate, knee)
    _announce(plan, settings, console)
    state = SweepState.open(plan.dir, {**plan.header(), "status": "running"})
    try:
        levels = run_capacity(plan, state, settings, console)
    except (SearchInterrupted, KeyboardInterrupt):
        state.data["status"] = "interrupted"
        state.save()
        write_report(plan.dir)
        console.print("[yellow]capacity search interrupted[/yellow]; run it again to resume")
        return 130
    state.data["status"] = "finished"
    state.save()
    table = capacity_table(levels)
    _print(table, plan, console, rates)
    console.print(f"report {write_report(plan.dir)}")
    return 0 if table["capacity"].notna().any() else 1


def _check(plan: Plan) -> None:
    problems = []
    if len(plan.vary) != 1:
        problems.append(SpecProblem("", "capacity needs exactly one --vary (e.g. workers)"))
    if RATE_KEY in plan.vary:
        problems.append(SpecProblem(RATE_KEY, "the search chooses the rate; vary something else"))
    if plan.base.load.profile != "constant":
        problems.append(SpecProblem("load.profile", "capacity probes need a constant load"))
    if problems:
        raise SpecError([SpecProblem(p.path, p.message, VARY_SOURCE) for p in problems])


def upper_bounds(plan: Plan, max_rate: float | None, console: Console) -> dict[str, float]:
    """Per level value: `--max-rate`, else the bare inference rate bound (measured once)."""
    (key,) = plan.vary
    if max_rate is not None:
        return dict.fromkeys(plan.vary[key], max_rate)
    measured: dict[tuple[object, ...], bare.BareRate] = {}
    bounds = {}
    for value in plan.vary[key]:
        spec = plan.spec_for(Cell(((key, value),)))
        workload = spec.workload
        if not isinstance(workload, YoloWorkload):
            raise ConfigError(
                f"no bare inference rate for a {workload.kind} workload: give --max-rate"
            )
        identity = (workload.model, workload.threads, workload.batch_size, workload.imgsz)
        if identity not in measured:
            measured[identity] = bare.measure(workload, spec.base_dir)
            console.print(_bare_line(workload, measured[identity]))
        bounds[value] = round(measured[identity].bound(workload.workers), 1)
    return bounds


def _bare_line(w: YoloWorkload, rate: bare.BareRate) -> str:
    return (
        f"bare inference ({w.model}, {w.threads} thread(s), batch {w.batch_size}): "
        f"{rate.per_worker:.1f} img/s per worker on {rate.cores} cores"
    )


def _announce(plan: Plan, settings: Settings, console: Console) -> None:
    uppers = settings.bounds.values()
    plain = sum(probes_needed(b, settings.resolution, settings.floor) for b in uppers)
    grid = sum(grid_points(b, settings.resolution) for b in uppers)
    bounds = ", ".join(f"{k}: {v:g}" for k, v in settings.bounds.items())
    runs = f"at most {plain} probe runs"
    if settings.knee is not None:
        knee = settings.knee
        most = sum(settings.most_runs(b) for b in uppers)
        runs = (
            f"per level one knee run of {knee.steps} steps × {knee.step_s:g} s up to the bound, "
            f"then probes within its knee: about {most} runs in all (without --knee: {plain})"
        )
    console.print(
        f"capacity {plan.id}: upper bounds {bounds} msg/s, resolution {settings.resolution:g} "
        f"msg/s; {runs} (an exhaustive grid: {grid})\n  → {plan.dir}"
    )


def _print(table: pd.DataFrame, plan: Plan, console: Console, rates: Sequence[float]) -> None:
    key = plan.params[0]
    view = Table(
        key, "capacity msg/s", "lowest failing", "J/frame", "efficiency", "probes", "searched"
    )
    for row in table.itertuples():
        view.add_row(
            f"{row.workers:g}",
            _show(row.capacity, "{:g}"),
            _show(row.first_failing, "{:g}"),
            _show(row.joules_per_frame, "{:.3f}"),
            _show(row.efficiency, "{:.0%}"),
            str(row.probes),
            f"{row.lower_bound:g}–{row.upper_bound:g} ({row.bounds_from})",
        )
    console.print(view)
    for note in table["note"]:
        if note:
            console.print(f"note: {note}")
    for rate in rates:
        fewest = demand(table, rate)
        answer = f"{fewest:g}" if fewest is not None else "none of the levels tried"
        console.print(f"demand: {rate:g} msg/s needs {key} = {answer}")


def _show(value: object, form: str) -> str:
    return "–" if value is None or pd.isna(value) else form.format(value)
