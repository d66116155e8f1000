"""`scalelab run`: one experiment end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scalelab.cli.common import SetOption, console, handle_errors
from scalelab.cli.summary_view import print_summary
from scalelab.run.experiment import run_experiment
from scalelab.spec.loader import load_spec


@handle_errors
def run(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    set_: SetOption = None,
) -> None:
    """Run an experiment: stack up, load, drain, account, export, tear down."""
    parsed = load_spec(spec, set_ or [])
    record, run_dir = run_experiment(parsed, spec, console)
    print_summary(console, run_dir)
    colour = {"succeeded": "green", "aborted": "yellow"}.get(record.status, "red")
    console.print(f"[{colour}]{record.status}[/{colour}] run {record.id}  →  {run_dir}")
    for error in record.errors:
        console.print(f"[red]error[/red] {error.get('component', '')} {error['message']}")
    if record.status != "succeeded":
        raise typer.Exit(130 if record.status == "aborted" else 1)
