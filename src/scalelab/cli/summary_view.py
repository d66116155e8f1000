"""The summary printed at the end of `scalelab run` (the same figures as summary.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.1f} ms"


def print_summary(console: Console, run_dir: Path) -> None:
    path = run_dir / "summary.json"
    if not path.exists():
        return
    summary: dict[str, Any] = json.loads(path.read_text())
    console.print(_headline(summary))
    console.print(_stages(summary))
    if summary.get("cpu"):
        console.print(_cpu(summary["cpu"]))
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
        console.print(
            f"  SLO {name}: {state} (target {_num(slo.get('target'))}, "
            f"measured {_num(slo.get('measured'))})"
        )
    load = energy.get("load") or {}
    if load.get("joules") is not None:
        label = " [yellow](estimate)[/yellow]" if energy.get("estimate") else ""
        per_frame = load.get("joules_per_frame")
        shown = f", {per_frame:.3f} J/frame" if per_frame is not None else ""
        console.print(f"energy in load: {load['joules']:.1f} J{shown}{label}")


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _headline(summary: dict[str, Any]) -> Table:
    rate, latency, acc = summary["rate"], summary["latency_s"], summary["accounting"]
    table = Table(title="load phase (warmup excluded)", show_header=False)
    table.add_row("target rate", f"{rate['target_rate']:.2f} msg/s")
    ratio = rate.get("achieved_ratio")
    shown = f" ({ratio:.1%} of target)" if ratio is not None else ""
    table.add_row("achieved rate", f"{rate['achieved_rate']:.2f} msg/s{shown}")
    table.add_row(
        "schedule lag p99 / max",
        f"{_ms(rate['schedule_lag_p99_s'])} / {_ms(rate['schedule_lag_max_s'])}",
    )
    table.add_row("throughput", f"{summary['throughput']:.2f} frames/s")
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


def _cpu(cpu: dict[str, dict[str, float]]) -> Table:
    table = Table("component", "CPU seconds", "cores (avg)", title="CPU during load")
    for name, usage in sorted(cpu.items()):
        table.add_row(name, f"{usage['cpu_seconds']:.2f}", f"{usage['cores']:.2f}")
    return table
