"""`scalelab run`: one experiment end to end, `repetitions` times."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scalelab.cli.common import PlatformOption, SetOption, console, handle_errors, with_platform
from scalelab.cli.summary_view import print_summary
from scalelab.live.follow import RunState
from scalelab.live.server import Dashboard, start_dashboard
from scalelab.run.record import RunRecord
from scalelab.run.runner import run_experiment
from scalelab.spec.loader import load_spec
from scalelab.spec.models import ExperimentSpec


@handle_errors
def run(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    set_: SetOption = None,
    platform: PlatformOption = None,
    no_dashboard: Annotated[
        bool, typer.Option("--no-dashboard", help="Do not serve the live page on 127.0.0.1.")
    ] = False,
) -> None:
    """Run an experiment: stack up, load, drain, account, export, analyse, tear down."""
    parsed = load_spec(spec, with_platform(set_, platform))
    dashboard = _start_dashboard(not no_dashboard)
    try:
        _repetitions(parsed, spec)
    finally:
        dashboard.stop()


def _repetitions(parsed: ExperimentSpec, spec: Path) -> None:
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


def _start_dashboard(serve: bool) -> Dashboard:
    """The live page (its URL printed now); it follows the runs of this process.

    With `--no-dashboard` nothing listens, but the Prometheus address is still printed
    as soon as the stack is up.
    """
    dashboard = start_dashboard(_announce, serve=serve)
    if serve:
        console.print(f"live dashboard [link={dashboard.url}]{dashboard.url}[/link]")
    return dashboard


def _announce(state: RunState, grafana: Path | None) -> None:
    console.print(f"Prometheus {state.prometheus}  (run {state.id})", highlight=False)
    if grafana is not None:
        console.print(f"Grafana dashboard {grafana}", highlight=False, soft_wrap=True)


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
