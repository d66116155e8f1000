"""`scalelab export`: a past run again, or any window from any Prometheus, into Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scalelab.analysis.lookup import find_run
from scalelab.cli.common import console, handle_errors
from scalelab.errors import ConfigError
from scalelab.export.run_export import METRICS_FILE, export_run, export_with_progress, parse_window
from scalelab.export.source import prometheus_for
from scalelab.run.record import RunRecord
from scalelab.spec.loader import load_resolved


@handle_errors
def export(
    run_id: Annotated[str | None, typer.Argument(help="Run to export again.")] = None,
    start: Annotated[
        str | None, typer.Option(help="Window start: RFC 3339 with Z or offset, or epoch s.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Window end (default: now).")] = None,
    prometheus: Annotated[
        str | None, typer.Option(help="Prometheus URL for --start/--end.")
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Parquet file for --start/--end.")
    ] = Path("metrics.parquet"),
    step: Annotated[
        float,
        typer.Option(
            "--step",
            "--sampling",
            help="Seconds per point when sizing requests; samples are exported raw, at their "
            "own times.",
        ),
    ] = 1.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "--n-threads", help="Requests in flight.")
    ] = 4,
    segment_points: Annotated[
        int,
        typer.Option(
            "--segment-size", help="Steps per request: each request covers segment-size × step s."
        ),
    ] = 10_000,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a run's metrics.parquet even with fewer rows."),
    ] = False,
) -> None:
    """Export a run's metrics again, or any --start/--end window, into Parquet.

    Samples as Prometheus stored them: where it scraped nothing there is no row.
    """
    if run_id is not None:
        _export_run(run_id, force)
        return
    if start is None or prometheus is None:
        raise ConfigError("give a RUN_ID, or --start (and --end) with --prometheus URL")
    result = export_with_progress(
        prometheus,
        parse_window(start, end),
        output,
        step,
        console,
        concurrency=concurrency,
        segment_points=segment_points,
    )
    _report(result.message, result.complete, output)


def _export_run(run_id: str, force: bool) -> None:
    run_dir = find_run(run_id)
    record = RunRecord.read(run_dir)
    spec = load_resolved(run_dir / "spec.yaml")
    with prometheus_for(record, spec) as url:
        result = export_run(run_dir, spec, record, url, console, force=force)
    record.write(run_dir)
    _report(result.message, result.complete, run_dir / METRICS_FILE)


def _report(message: str, complete: bool, path: Path) -> None:
    colour = "green" if complete else "yellow"
    console.print(
        f"[{colour}]{'complete' if complete else 'incomplete'}[/{colour}] {message} → {path}"
    )
    if not complete:
        raise typer.Exit(1)
