"""`scalelab run`: one experiment end to end, `repetitions` times."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scalelab.cli.common import PlatformOption, SetOption, console, handle_errors, with_platform
from scalelab.cli.summary_view import print_summary
from scalelab.run.record import RunRecord
from scalelab.run.runner import run_experiment
from scalelab.spec.loader import load_spec


@handle_errors
def run(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    set_: SetOption = None,
    platform: PlatformOption = None,
) -> None:
    """Run an experiment: stack up, load, drain, account, export, analyse, tear down."""
    parsed = load_spec(spec, with_platform(set_, platform))
    records = []
    for repetition in range(1, parsed.repetitions + 1):
        if parsed.repetitions > 1:
            console.rule(f"repetition {repetition} of {parsed.repetitions}")
        record, run_dir = run_experiment(parsed, spec, console, repetition)
        _report(record, run_dir)
        records.append(record)
        if record.status == "aborted":
            break
    if parsed.repetitions > 1:
        console.print("runs: " + " ".join(r.id for r in records))
    worst = next((r.status for r in records if r.status != "succeeded"), "succeeded")
    if worst != "succeeded":
        raise typer.Exit(130 if worst == "aborted" else 1)


def _report(record: RunRecord, run_dir: Path) -> None:
    """The summary (or, for a run that ended early, the phases it reached), status, errors."""
    if (run_dir / "summary.json").is_file():
        print_summary(console, run_dir)
    else:
        console.print(f"no summary: the run ended early; phases: {_phases(record)}")
    colour = {"succeeded": "green", "aborted": "yellow"}.get(record.status, "red")
    console.print(f"[{colour}]{record.status}[/{colour}] run {record.id}  →  {run_dir}")
    for error in record.errors:
        console.print(
            f"[red]error[/red] {error.get('component', '')} {escape(error['message'])}",
            highlight=False,
            soft_wrap=True,
        )


def _phases(record: RunRecord) -> str:
    spans = []
    for phase in record.phases:
        window = record.window(phase.name)
        took = f" {(window[1] - window[0]).total_seconds():.1f} s" if window else " (cut short)"
        spans.append(phase.name + took)
    return ", ".join(spans) or "none"
