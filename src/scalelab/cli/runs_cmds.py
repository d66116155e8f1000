"""`scalelab ls`: the runs on disk with their status and window."""

from __future__ import annotations

from rich.table import Table

from scalelab import paths
from scalelab.cli.common import console, handle_errors
from scalelab.run.record import RunRecord

STATUS_COLOURS = {"succeeded": "green", "failed": "red", "aborted": "yellow", "running": "cyan"}


@handle_errors
def ls() -> None:
    """List runs: id, status, start and end (UTC)."""
    root = paths.runs_dir()
    runs = sorted(root.glob("*/run.json")) if root.is_dir() else []
    if not runs:
        console.print(f"no runs in {root}")
        return
    table = Table("run", "status", "started (UTC)", "ended (UTC)", "errors")
    for path in runs:
        try:
            record = RunRecord.read(path.parent)
        except (OSError, ValueError, TypeError):
            table.add_row(path.parent.name, "[red]unreadable[/red]", "", "", "")
            continue
        colour = STATUS_COLOURS.get(record.status, "white")
        errors = "; ".join(e["message"].splitlines()[0] for e in record.errors)[:60]
        table.add_row(
            record.id,
            f"[{colour}]{record.status}[/{colour}]",
            record.started,
            record.ended or "",
            errors,
        )
    console.print(table)
