"""`scalelab ls` and `scalelab rm`: the runs on disk, for people and for scripts.

`ls` prints a table on a terminal; piped, one tab-separated line per run with
the full id (no truncation); `--json` gives every field for `jq`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from scalelab import paths
from scalelab.analysis.lookup import find_runs, run_name
from scalelab.analysis.runs import RUN_FILE
from scalelab.cli.common import console, err_console, handle_errors
from scalelab.errors import ConfigError

STATUS_COLOURS = {"succeeded": "green", "failed": "red", "aborted": "yellow", "running": "cyan"}
VERDICT_COLOURS = {"VALID": "green", "INVALID": "red"}
COLUMNS = ("id", "status", "verdict", "started", "ended", "errors")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for jq and scripts).")]


def run_rows(root: Path) -> list[dict[str, Any]]:
    """One dict per run directory under `root`, oldest first; unreadable records say so."""
    dirs = sorted(p.parent for p in root.glob(f"*/{RUN_FILE}")) if root.is_dir() else []
    return [run_row(d) for d in dirs]


def run_row(run_dir: Path) -> dict[str, Any]:
    record, summary = _json(run_dir / RUN_FILE), _json(run_dir / "summary.json")
    verdict = summary.get("verdict") or {}
    errors = [str(e.get("message", "")).splitlines()[0] for e in record.get("errors") or []]
    report = run_dir / "report.html"
    return {
        "id": record.get("id") or run_dir.name,
        "name": record.get("name") or run_name(run_dir.name),
        "status": record.get("status") or "unreadable",
        "verdict": verdict.get("result"),
        "reasons": verdict.get("reasons") or [],
        "started": record.get("started"),
        "ended": record.get("ended"),
        "platform": record.get("platform"),
        "throughput": summary.get("throughput"),
        "latency_p99_s": (summary.get("latency_s") or {}).get("p99"),
        "errors": errors,
        "dir": str(run_dir),
        "report": str(report) if report.is_file() else None,
    }


@handle_errors
def ls(
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the run ids.")] = False,
) -> None:
    """List runs: id, status, verdict, start and end (UTC)."""
    root = paths.runs_dir()
    rows = run_rows(root)
    if as_json:
        print(json.dumps(rows, indent=2))
    elif quiet:
        print("\n".join(row["id"] for row in rows))
    elif not rows:
        err_console.print(f"no runs in {escape(str(root))}")
    elif console.is_terminal:
        console.print(_table(rows))
    else:
        print("\t".join(COLUMNS))
        for row in rows:
            print("\t".join(_plain(row, column) for column in COLUMNS))


@handle_errors
def rm(
    runs: Annotated[
        list[str],
        typer.Argument(help="Runs: ids, prefixes, names, `latest`, or directories.", metavar="RUN"),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Also a run whose record still says running.")
    ] = False,
) -> None:
    """Delete runs (their whole directories)."""
    run_dirs = list(dict.fromkeys(find_runs(runs)))
    running = [d.name for d in run_dirs if _json(d / RUN_FILE).get("status") == "running"]
    if running and not force:
        raise ConfigError(
            f"still running: {', '.join(running)} (stop it, `scalelab reset`, or --force)"
        )
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError("not a terminal: pass --yes to delete " + ", ".join(runs))
        names = "\n  ".join(d.name for d in run_dirs)
        typer.confirm(f"delete {len(run_dirs)} run(s)?\n  {names}\n", abort=True)
    for run_dir in run_dirs:
        shutil.rmtree(run_dir)
        console.print(f"removed {escape(run_dir.name)}", highlight=False)


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table("run", "status", "verdict", "started (UTC)", "ended (UTC)", "errors")
    table.columns[0].no_wrap = True
    for row in rows:
        status, verdict = row["status"], row["verdict"] or ""
        colour = STATUS_COLOURS.get(status, "red")
        tone = VERDICT_COLOURS.get(verdict, "white")
        table.add_row(
            escape(row["id"]),
            f"[{colour}]{status}[/{colour}]",
            f"[{tone}]{verdict}[/{tone}]" if verdict else "",
            row["started"] or "",
            row["ended"] or "",
            escape("; ".join(row["errors"])[:60]),
        )
    return table


def _plain(row: dict[str, Any], column: str) -> str:
    value = row[column]
    if isinstance(value, list):
        value = "; ".join(value)
    return " ".join(str(value or "").split()) or "-"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
