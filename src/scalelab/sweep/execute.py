"""Run the cells of a sweep one after the other, each an ordinary run, resumably.

A cell whose run succeeded is skipped when the sweep runs again. Ctrl-C (or
SIGTERM/SIGHUP) during a run is the run's own: it aborts, tears down and is
recorded `aborted`; the sweep then stops and says how to resume. A signal
between runs stops the sweep before the next one starts.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scalelab.run.runner import run_experiment
from scalelab.sweep.grid import Cell
from scalelab.sweep.plan import Plan
from scalelab.sweep.state import SweepState, now
from scalelab.sweep.stats import cell_table
from scalelab.sweep.table import NUMERIC, build_table, write_table

CELLS_FILE = "cells.parquet"
SETUP_ESTIMATE_S = 35.0
"""Stack up, drain and teardown of one local run, for the ETA before any run has finished."""


@dataclass
class Outcome:
    status: str
    """`finished` (every cell ran) or `interrupted`."""
    ran: int
    skipped: int


def open_state(plan: Plan) -> SweepState:
    """The sweep's sweep.json (new or resumed), every cell of the grid listed with a status."""
    state = SweepState.open(plan.dir, plan.header())
    state.data["order"] = [cell.key for cell in plan.cells()]
    for cell in plan.cells():
        if not state.entry(cell):
            state.update(cell, status="pending")
    return state


def run_cells(plan: Plan, state: SweepState, cells: list[Cell], console: Console) -> Outcome:
    """Run every cell not yet done, in the given order; stop at the first aborted run."""
    todo = [cell for cell in cells if not state.done(cell)]
    skipped = len(cells) - len(todo)
    if skipped:
        console.print(f"resuming: {skipped} of {len(cells)} runs already succeeded, skipped")
    state.data["status"] = "running"
    ran = 0
    with _stop_between_runs(), SweepProgress(console, len(todo), plan) as progress:
        try:
            for cell in todo:
                if run_cell(plan, state, cell, console) == "aborted":
                    return _stopped(state, ran + 1, skipped, console)
                ran += 1
                progress.advance(state)
        except KeyboardInterrupt:
            return _stopped(state, ran, skipped, console)
    state.data["status"] = "finished"
    state.save()
    return Outcome("finished", ran, skipped)


def run_cell(plan: Plan, state: SweepState, cell: Cell, console: Console) -> str:
    """One run for one cell; its status, run id and directory go to sweep.json at once."""
    spec = plan.spec_for(cell)
    console.rule(f"{cell.config} (repetition {cell.repetition})")
    started = time.monotonic()
    state.update(cell, status="running", started=now(), run_id=None, run_dir=None)
    record, run_dir = run_experiment(spec, plan.spec_path, console, cell.repetition)
    state.update(
        cell,
        status=record.status,
        run_id=record.id,
        run_dir=str(run_dir),
        ended=now(),
        seconds=round(time.monotonic() - started, 1),
    )
    refresh_tables(plan, state)
    colour = {"succeeded": "green", "aborted": "yellow"}.get(record.status, "red")
    console.print(f"[{colour}]{record.status}[/{colour}] {cell.key} → run {record.id}")
    return record.status


def refresh_tables(plan: Plan, state: SweepState) -> None:
    """Rewrite sweep.parquet (one row a run) and cells.parquet (mean and 95 % CI a cell)."""
    runs = build_table(state.runs, plan.params)
    if runs.empty:
        return
    write_table(runs, plan.dir)
    cells = cell_table(runs, plan.params, NUMERIC)
    temporary = plan.dir / f".{CELLS_FILE}.tmp"
    cells.to_parquet(temporary, index=False)
    temporary.replace(plan.dir / CELLS_FILE)


def disagreements(sweep_dir: Path) -> list[str]:
    """Per cell, the repetitions outside the others' 95 % prediction interval (stats.py)."""
    path = sweep_dir / CELLS_FILE
    if not path.is_file():
        return []
    cells = pd.read_parquet(path)
    if "disagree" not in cells:
        return []
    return [f"{row.config}: {row.disagree}" for row in cells.itertuples() if row.disagree]


def _stopped(state: SweepState, ran: int, skipped: int, console: Console) -> Outcome:
    for key, entry in state.runs.items():
        if entry.get("status") == "running":  # a signal before the run had a record
            state.data["runs"][key]["status"] = "pending"
    state.data["status"] = "interrupted"
    state.save()
    console.print("[yellow]sweep interrupted[/yellow]; run the same command again to resume")
    return Outcome("interrupted", ran, skipped)


@contextmanager
def _stop_between_runs() -> Iterator[None]:
    """SIGTERM and SIGHUP between runs stop the sweep like Ctrl-C (a run sets its own)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class SweepProgress:
    """One progress bar for the whole sweep; the ETA is the mean run time so far × runs left."""

    def __init__(self, console: Console, total: int, plan: Plan):
        self.total = total
        load = plan.base.load
        self.estimate = SETUP_ESTIMATE_S + float(load.duration)
        self.progress = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs  {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task("sweep", total=total, eta=self._eta(0, []))

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, state: SweepState) -> None:
        seconds = [e["seconds"] for e in state.runs.values() if e.get("seconds")]
        done = int(self.progress.tasks[0].completed) + 1
        self.progress.update(self.task, completed=done, eta=self._eta(done, seconds))

    def _eta(self, done: int, seconds: list[float]) -> str:
        left = self.total - done
        if left <= 0:
            return ""
        mean = sum(seconds) / len(seconds) if seconds else self.estimate
        basis = "" if seconds else " (estimate)"
        return f"ETA {_clock(left * mean)}{basis}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
