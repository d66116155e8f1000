"""Several runs side by side: headline figures, and the spec parameters that differ.

workload.workers   1       2       4
throughput         3.9     7.8     9.1    frames/s
latency p99        120 ms  180 ms  950 ms
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scalelab.analysis import charts
from scalelab.analysis import htmlkit as h
from scalelab.analysis.dataset import Run, headline
from scalelab.analysis.energy import energy
from scalelab.analysis.host_cpu import foreign_cpu
from scalelab.analysis.verdict import verdict

COMPARISON_FILE = "comparison.html"
Formatter = Callable[[Any], str]
FIGURES: tuple[tuple[str, str, Formatter], ...] = (
    ("status", "status", str),
    ("verdict", "verdict", str),
    ("target_rate", "offered rate (target)", lambda v: h.number(v, 2, "msg/s")),
    ("achieved_rate", "achieved rate (sent)", lambda v: h.number(v, 2, "msg/s")),
    ("throughput", "throughput (completed)", lambda v: h.number(v, 2, "frames/s")),
    ("throughput_ratio", "completed / offered", lambda v: h.number(v * 100, 1, "%")),
    ("not_completed", "not completed (load phase)", lambda v: h.number(v, 0)),
    ("duplicate_records", "duplicate records (left out)", lambda v: h.number(v, 0)),
    ("saturated_steps", "saturated steps", str),
    ("latency_p50_s", "latency p50", h.ms),
    ("latency_p95_s", "latency p95", h.ms),
    ("latency_p99_s", "latency p99", h.ms),
    ("latency_max_s", "latency max", h.ms),
    ("consumer_lag_max", "consumer lag max", lambda v: h.number(v, 0)),
    ("lost", "lost messages", lambda v: h.number(v, 0)),
    ("cpu_cores", "CPU cores (sum)", lambda v: h.number(v, 2)),
    ("energy_j_per_frame", "energy per frame (host-wide)", lambda v: h.number(v, 3, "J")),
    ("energy_own_j_per_frame", "energy per frame (run's own)", lambda v: h.number(v, 3, "J")),
    ("foreign_cpu_share", "host CPU not the run's", lambda v: h.number(v * 100, 1, "%")),
    ("energy_source", "energy source", str),
)


@dataclass
class Comparison:
    runs: list[str]
    figures: pd.DataFrame
    """Headline figures: one row per run (raw values), columns as in `runs_table`."""
    differing: dict[str, list[Any]]
    """Flattened spec keys whose values differ, with each run's value in order."""

    def rows(self) -> list[tuple[str, list[str]]]:
        """Display rows: differing parameters first, then the formatted headline figures."""
        params = [(key, [_text(v) for v in values]) for key, values in self.differing.items()]
        figures = [
            (label, [fmt(v) if v is not None else "–" for v in self.figures[key]])
            for key, label, fmt in FIGURES
        ]
        return params + figures


def compare(runs: Sequence[Run]) -> Comparison:
    figures = pd.DataFrame([_figures(run) for run in runs]).set_index("run_id", drop=False)
    figures = figures.astype(object).where(figures.notna(), None)
    return Comparison([run.id for run in runs], figures, differing_params(runs))


def differing_params(runs: Sequence[Run]) -> dict[str, list[Any]]:
    keys = sorted({key for run in runs for key in run.params})
    out = {}
    for key in keys:
        values = [run.params.get(key) for run in runs]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            out[key] = values
    return out


def write_comparison(runs: Sequence[Run], out: Path | None = None) -> Path:
    path = out or runs[0].dir / COMPARISON_FILE
    comparison = compare(runs)
    chart = charts.comparison_bars(
        comparison.figures.set_index("run_id"), path.parent / "plots" / "comparison.png"
    )
    rows = [(label, *values) for label, values in comparison.rows()]
    body = [
        f"<h1>Comparison of {len(runs)} runs</h1>",
        h.section(
            "Spec parameters that differ",
            h.table(["parameter", *comparison.runs], rows[: len(comparison.differing)])
            if comparison.differing
            else "<p class='muted'>the specs are identical</p>",
        ),
        h.section(
            "Headline figures (load phase)",
            h.table(["figure", *comparison.runs], rows[len(comparison.differing) :]),
        ),
        h.section("Throughput and latency", h.image(chart, "throughput and p99 per run"))
        if chart
        else "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(h.page(f"scalelab comparison of {len(runs)} runs", "\n".join(body)))
    return path


def _figures(run: Run) -> dict[str, Any]:
    """Headline figures, computing the verdict and energy when summary.json lacks them."""
    figures = {**headline(run), **corrected(run)}
    if figures["verdict"] is None and run.summary:
        figures["verdict"] = verdict(run).result
    spent = run.summary.get("energy") or {}
    if figures["energy_source"] is None and run.summary:
        spent = energy(run)
        figures["energy_source"] = spent.get("source")
        figures["energy_j_per_frame"] = (spent.get("load") or {}).get("joules_per_frame")
    figures["energy_own_j_per_frame"] = (spent.get("attributed") or {}).get("joules_per_frame")
    return figures


def corrected(run: Run) -> dict[str, Any]:
    """The figures that count each message once and name what was not served."""
    summary = run.summary
    target, throughput = (summary.get("rate") or {}).get("target_rate"), summary.get("throughput")
    steps = [s["step"] for s in summary.get("steps") or [] if s.get("saturated")]
    host = foreign_cpu(run) if summary else None
    return {
        "throughput_ratio": throughput / target if target and throughput is not None else None,
        "not_completed": (summary.get("completion") or {}).get("not_completed"),
        "duplicate_records": (summary.get("duplicates") or {}).get("records"),
        "saturated_steps": ", ".join(steps)
        if steps
        else ("none" if summary.get("steps") else None),
        "foreign_cpu_share": host.get("foreign_share") if host else None,
    }


def _text(value: Any) -> str:
    return "–" if value is None else str(value)
