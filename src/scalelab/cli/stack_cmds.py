"""`scalelab up`, `down`, `status`, `reset`: the stack left running between commands."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from scalelab.cli.common import SetOption, console, handle_errors
from scalelab.platform.base import ComponentLaunch
from scalelab.platform.process import wait_until
from scalelab.run import stack
from scalelab.run.session import RunSession
from scalelab.spec.loader import load_spec


@handle_errors
def up(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    set_: SetOption = None,
) -> None:
    """Bring the stack up (broker, Prometheus, node exporter) and leave it running."""
    if stack.read_stack() is not None:
        console.print("[yellow]a stack is already running[/yellow]: `scalelab down` first")
        raise typer.Exit(1)
    parsed = load_spec(spec, set_ or [])
    with (
        console.status("starting broker and monitoring..."),
        RunSession(parsed, spec, detached=True) as session,
    ):
        endpoints = session.start_stack()
        page = _start_live_page(session)
        session.keep_running = True
    setup = session.record.window("setup")
    took = (setup[1] - setup[0]).total_seconds() if setup else 0.0
    console.print(f"[green]up[/green] in {took:.1f} s  run {session.id}")
    for name, url in endpoints.to_dict().items():
        console.print(f"  {name:<12} {url}")
    if page:
        console.print(f"  {'dashboard':<12} {page}  (follows the runs on this stack)")
    console.print("stop with `scalelab down`")


def _start_live_page(session: RunSession) -> str | None:
    """The live page as one more process of the stack (local platform): `down` stops it.

    It serves the port the platform hands it and writes its address to live.json.
    """
    if session.spec.platform.kind != "local":
        return None
    args = [str(session.dir)]
    session.platform.start_component(
        ComponentLaunch("dashboard", "dashboard", "scalelab.live", args, scrape=False)
    )
    live = session.dir / "live.json"
    if not wait_until(live.is_file, 15, interval=0.1):
        return None
    return str(json.loads(live.read_text())["url"])


@handle_errors
def down() -> None:
    """Stop the stack `scalelab up` started and close its run record."""
    state, stopped = stack.bring_down()
    if state is None:
        console.print("nothing is running")
        return
    for proc in stopped:
        console.print(f"stopped {proc.name} (pid {proc.pid})")
    console.print(f"[green]down[/green] run {state['run_id']}")


@handle_errors
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (for jq and scripts).")
    ] = False,
) -> None:
    """What is running: components, pids, ports, since when."""
    procs = stack.process_states()
    if as_json:
        print(json.dumps(status_data(procs), indent=2))
        return
    if not procs:
        console.print("nothing is running")
        return
    table = Table("component", "pid", "state", "ports", "since", "run")
    for proc in procs:
        state = "[green]running[/green]" if proc.alive else "[red]gone[/red]"
        ports = ", ".join(f"{k}={v}" for k, v in proc.ports.items())
        table.add_row(proc.name, str(proc.pid), state, ports, _since(proc.started), proc.run_id)
    console.print(table)


def status_data(procs: list[stack.ProcessState]) -> dict[str, Any]:
    """The stack `up` left (None without one) and every process from the pid files."""
    kept = stack.read_stack()
    fields = ("run_id", "run_dir", "endpoints", "started")
    return {
        "stack": {k: kept.get(k) for k in fields} if kept else None,
        "processes": [asdict(proc) for proc in procs],
    }


def _since(started: str) -> str:
    moment = datetime.fromisoformat(started.replace("Z", "+00:00"))
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    return f"{started} ({seconds // 60} min {seconds % 60} s ago)"


@handle_errors
def reset() -> None:
    """Remove whatever an earlier run left: processes, pid files, stale broker storage,
    and close the records of runs whose scalelab is gone (marked aborted, with why)."""
    stopped, closed = stack.reset()
    for proc in stopped:
        how = "stopped" if proc.alive else "removed stale pid file of"
        console.print(f"{how} {proc.name} (pid {proc.pid}, run {proc.run_id})")
    for run_id in closed:
        console.print(f"closed the record of run {run_id} as aborted")
    console.print("[green]clean[/green]")
