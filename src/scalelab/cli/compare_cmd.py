"""`scalelab compare RUN ...`: headline figures side by side, with each run's change against
the first, and what differs in the specs; `--json` for scripts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from scalelab.analysis.compare import compare as compare_runs
from scalelab.analysis.dataset import Run
from scalelab.analysis.lookup import find_runs
from scalelab.cli.common import console, handle_errors


@handle_errors
def compare(
    runs: Annotated[
        list[str],
        typer.Argument(help="Runs: ids, prefixes, names, `latest`, or directories.", metavar="RUN"),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (for jq and scripts).")
    ] = False,
) -> None:
    """Compare runs: the spec parameters that differ, then throughput, latency, energy."""
    comparison = compare_runs([Run(path) for path in find_runs(runs)])
    if as_json:
        print(json.dumps(comparison.to_dict(), indent=2, default=str))
        return
    ids = (Column(escape(run), overflow="fold") for run in comparison.runs)
    table = Table("", *ids, title="runs compared")
    params = len(comparison.differing)
    for index, (label, values) in enumerate(comparison.display_rows()):
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
    console.print(f"[dim]changes in brackets: against {escape(comparison.runs[0])}[/dim]")
