"""`scalelab compare RUN_ID ...`: headline figures side by side, and what differs in the specs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from scalelab.analysis.compare import compare as compare_runs
from scalelab.analysis.dataset import Run
from scalelab.analysis.lookup import find_runs
from scalelab.cli.common import console, handle_errors


@handle_errors
def compare(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Runs: ids, prefixes, names, `latest`, or directories.", metavar="RUN_ID"
        ),
    ],
) -> None:
    """Compare runs: the spec parameters that differ, then throughput, latency, energy."""
    comparison = compare_runs([Run(path) for path in find_runs(runs)])
    table = Table("", *(escape(run) for run in comparison.runs), title="runs compared")
    params = len(comparison.differing)
    for index, (label, values) in enumerate(comparison.rows()):
        style = "cyan" if index < params else None
        table.add_row(
            escape(label),
            *(escape(v) for v in values),
            style=style,
            end_section=index == params - 1,
        )
    if not params:
        console.print("[dim]the specs are identical[/dim]")
    console.print(table)
