"""`scalelab report RUN_ID [RUN_ID ...]`: rebuild each run's analysis and report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scalelab.analysis.analyse import analyse_run
from scalelab.analysis.lookup import find_runs
from scalelab.analysis.report import REPORT_FILE, build_report
from scalelab.cli.common import console, handle_errors


@handle_errors
def report(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Runs: ids, prefixes, names, `latest`, or directories.", metavar="RUN_ID"
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where the comparison of several runs goes "
            "(default: comparisons/<id>/comparison.html under the runs directory).",
        ),
    ] = None,
) -> None:
    """Rebuild verdict, energy, correlations, plots and report.html; compare several runs."""
    run_dirs = find_runs(runs)
    for run_dir in run_dirs:
        result = analyse_run(run_dir)
        colour = "green" if result["valid"] else "red"
        console.print(
            f"[{colour}]{result['result']}[/{colour}] {escape(run_dir.name)}  →  "
            f"{escape(str(run_dir / REPORT_FILE))}",
            highlight=False,
        )
        for reason in result["reasons"]:
            console.print(f"  [red]•[/red] {escape(reason)}", highlight=False)
    if len(run_dirs) > 1:
        path = build_report(run_dirs, out)
        console.print(f"comparison  →  {escape(str(path))}", highlight=False)
