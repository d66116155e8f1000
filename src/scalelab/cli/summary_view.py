"""The summary printed at the end of `scalelab run` (the same figures as summary.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scalelab.analysis.units import ratio, seconds, slo_values


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.1f} ms"


def print_summary(console: Console, run_dir: Path) -> None:
    path = run_dir / "summary.json"
    if not path.exists():
        return
    summary: dict[str, Any] = json.loads(path.read_text())
    console.print(_headline(summary))
    if summary.get("steps"):
        console.print(_steps(summary["steps"]))
    if summary.get("faults"):
        console.print(_faults(summary["faults"]))
    console.print(_stages(summary))
    if summary.get("cpu"):
        console.print(_cpu(summary["cpu"], summary.get("cpu_host") or {}))
    if summary.get("verdict"):
        _print_verdict(console, summary["verdict"], summary.get("energy", {}))
    if (run_dir / "report.html").exists():
        console.print(f"report: {run_dir / 'report.html'}")


def _print_verdict(console: Console, verdict: dict[str, Any], energy: dict[str, Any]) -> None:
    colour = "green" if verdict.get("valid") else "red"
    console.print(f"verdict: [bold {colour}]{verdict.get('result')}[/bold {colour}]")
    for reason in verdict.get("reasons", []):
        console.print(f"  - {escape(str(reason))}")
    for name, slo in (verdict.get("slo") or {}).items():
        state = "[green]met[/green]" if slo.get("met") else "[red]missed[/red]"
        target, measured = slo_values(name, slo)
        console.print(f"  SLO {name}: {state} (target {target}, measured {measured})")
    for note in verdict.get("notes", []):
        console.print(f"  [dim]note: {escape(str(note))}[/dim]")
    _print_energy(console, energy)


def _print_energy(console: Console, energy: dict[str, Any]) -> None:
    """Host-wide energy and the share attributed to the run, each labelled."""
    load = energy.get("load") or {}
    if load.get("joules") is None:
        return
    label = " [yellow](estimate)[/yellow]" if energy.get("estimate") else ""
    console.print(f"energy in load, host-wide: {_joules(load)}{label}")
    own = energy.get("attributed") or {}
    if own.get("joules") is not None:
        console.print(
            f"energy in load, the run's own processes ({own['share']:.0%} of busy CPU): "
            f"{_joules(own)}{label}"
        )


def _joules(block: dict[str, Any]) -> str:
    per_frame = block.get("joules_per_frame")
    shown = f", {per_frame:.3f} J/frame" if per_frame is not None else ""
    return f"{block['joules']:.1f} J{shown}"


def _headline(summary: dict[str, Any]) -> Table:
    rate, latency, acc = summary["rate"], summary["latency_s"], summary["accounting"]
    table = Table(title="load phase (warmup excluded)", show_header=False)
    table.add_row("offered rate (target)", f"{rate['target_rate']:.2f} msg/s")
    ratio = rate.get("achieved_ratio")
    shown = f" ({ratio:.1%} of target)" if ratio is not None else ""
    table.add_row("achieved rate (sent)", f"{rate['achieved_rate']:.2f} msg/s{shown}")
    table.add_row(
        "schedule lag p99 / max",
        f"{_ms(rate['schedule_lag_p99_s'])} / {_ms(rate['schedule_lag_max_s'])}",
    )
    target = rate.get("target_rate")
    share = f" ({summary['throughput'] / target:.1%} of offered)" if target else ""
    table.add_row("throughput (completed)", f"{summary['throughput']:.2f} frames/s{share}")
    completion = summary.get("completion") or {}
    if completion.get("not_completed"):
        table.add_row(
            "[red]not completed[/red]",
            f"[red]{completion['not_completed']} of {completion['load_messages']} "
            "messages of the load phase[/red]",
        )
    duplicates = (summary.get("duplicates") or {}).get("records")
    if duplicates:
        table.add_row("duplicates (left out)", f"{duplicates} records")
    table.add_row(
        "latency p50 / p95 / p99 / max",
        " / ".join(_ms(latency[k]) for k in ("p50", "p95", "p99", "max")),
    )
    lags = [s["lag"] for s in summary.get("consumer_lag", [])]
    table.add_row("consumer lag max / end", f"{max(lags, default=0)} / {lags[-1] if lags else 0}")
    colour = "green" if acc["ok"] else "red"
    table.add_row(
        "accounting",
        f"[{colour}]produced {acc['produced']} = processed "
        f"{acc['processed']} + dead-lettered {acc['dead_lettered']} + queued "
        f"{acc['still_queued']} (lost {acc['lost']}, duplicates {acc['duplicates']})"
        f"[/{colour}]",
    )
    return table


def _stages(summary: dict[str, Any]) -> Table:
    table = Table("stage", "p50", "p95", "p99", "mean", title="per-stage time per frame")
    for stage, stats in summary["stages_s"].items():
        table.add_row(stage, *(_ms(stats[k]) for k in ("p50", "p95", "p99", "mean")))
    return table


def _cpu(cpu: dict[str, dict[str, float]], host: dict[str, Any]) -> Table:
    table = Table("component", "CPU seconds", "cores (avg)", title="CPU during load")
    for name, usage in sorted(cpu.items()):
        table.add_row(name, f"{usage['cpu_seconds']:.2f}", f"{usage['cores']:.2f}")
    if host.get("busy_seconds") is not None:
        share = host.get("foreign_share")
        foreign = f" ({ratio(share)} not the run's)" if share is not None else ""
        table.add_row("host (all processes)", f"{host['busy_seconds']:.2f}{foreign}", "")
    return table


def _steps(steps: list[dict[str, Any]]) -> Table:
    table = Table(
        "step", "from–to (s)", "offered", "completed", "p50", "p95", "p99", "lag at end",
        title="per step (load phase)",
    )  # fmt: skip
    for row in steps:
        latency = row.get("latency_s") or {}
        mark = " [red]saturated[/red]" if row.get("saturated") else ""
        table.add_row(
            f"{row['step']}{mark}",
            f"{row['start_s']:g}–{row['end_s']:g}",
            _rate(row.get("offered_rate")),
            _rate(row.get("completed_rate")),
            *(seconds(latency.get(k)) for k in ("p50", "p95", "p99")),
            "–" if row.get("lag_end") is None else str(row["lag_end"]),
        )
    return table


def _faults(faults: list[dict[str, Any]]) -> Table:
    table = Table("fault", "at (s)", "component", "partitions", "recovery", title="faults")
    for fault in faults:
        recovery = seconds(fault.get("recovery_s")) if fault.get("recovered") else "never"
        table.add_row(
            str(fault.get("kind")),
            "–" if fault.get("t_s") is None else f"{fault['t_s']:.1f}",
            str(fault.get("component") or "–"),
            ", ".join(str(p) for p in fault.get("partitions") or []) or "–",
            recovery,
        )
    return table


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}/s"
