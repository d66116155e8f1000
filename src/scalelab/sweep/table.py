"""sweep.parquet: one row per run, the varied parameters beside every headline figure.

The figures are read from each run's own summary.json and run.json, never
recomputed, so the sweep table always agrees with the runs' summaries.
Opening a sweep imports neither Kafka nor ONNX Runtime.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from ruamel.yaml import YAML

from scalelab.sweep.judge import judge

TABLE_FILE = "sweep.parquet"

Getter = Callable[[dict[str, Any]], Any]


def _at(*keys: str) -> Getter:
    def get(summary: dict[str, Any]) -> Any:
        node: Any = summary
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    return get


FIGURES: dict[str, Getter] = {
    "offered_rate": _at("rate", "target_rate"),
    "achieved_rate": _at("rate", "achieved_rate"),
    "throughput": _at("throughput"),
    "latency_p50_s": _at("latency_s", "p50"),
    "latency_p95_s": _at("latency_s", "p95"),
    "latency_p99_s": _at("latency_s", "p99"),
    "latency_max_s": _at("latency_s", "max"),
    "joules_per_frame": _at("energy", "load", "joules_per_frame"),
    "mean_watts": _at("energy", "load", "mean_watts"),
    "produced": _at("accounting", "produced"),
    "processed": _at("accounting", "processed"),
    "lost": _at("accounting", "lost"),
    "dead_lettered": _at("accounting", "dead_lettered"),
    "not_completed": _at("completion", "not_completed"),
    "duplicate_records": _at("duplicates", "records"),
}
"""Headline figures per run, by column name → where summary.json keeps them."""

NUMERIC = [name for name in FIGURES if name not in ("produced", "processed")] + [
    "completed_ratio",
    "sustained",
]
"""Columns that get a mean and confidence interval per cell (`sustained`: the share of runs)."""


def run_row(run_dir: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """One row: the cell's parameters, the run's status and verdict, its headline figures."""
    summary = _json(run_dir / "summary.json")
    record = _json(run_dir / "run.json")
    verdict = summary.get("verdict") or {}
    row: dict[str, Any] = {
        "config": entry.get("config", ""),
        "repetition": entry.get("repetition", 1),
        **{key: parse_value(value) for key, value in (entry.get("params") or {}).items()},
        "run_id": record.get("id") or run_dir.name,
        "run_dir": str(run_dir),
        "status": record.get("status") or entry.get("status"),
        "verdict": verdict.get("result"),
        "slo_met": verdict.get("slo_met"),
        "reasons": "; ".join(verdict.get("reasons") or []),
        "energy_estimate": _at("energy", "estimate")(summary),
        "slo_latency_p99_s": _at("verdict", "slo", "latency_p99", "target")(summary),
    }
    row.update({name: get(summary) for name, get in FIGURES.items()})
    offered, served = row["offered_rate"], row["throughput"]
    row["completed_ratio"] = served / offered if offered and served is not None else None
    judgement = judge(run_dir)
    row["sustained"] = judgement.sustained
    row["not_sustained_because"] = "; ".join(judgement.reasons)
    return row


def parse_value(text: Any) -> Any:
    """A `--set` text back to its YAML value, so `4` sorts and plots as a number."""
    if not isinstance(text, str):
        return text
    try:
        value = YAML(typ="safe").load(text)
    except Exception:  # noqa: BLE001 - an unparsable text stays text
        return text
    return value if isinstance(value, int | float | str | bool) else text


def build_table(runs: dict[str, dict[str, Any]], params: list[str]) -> pd.DataFrame:
    """The rows of every run that left a directory, in the order they ran."""
    rows = [
        run_row(Path(entry["run_dir"]), entry)
        for entry in sorted(runs.values(), key=lambda e: e.get("started") or "")
        if entry.get("run_dir") and Path(entry["run_dir"]).is_dir()
    ]
    frame = pd.DataFrame(rows)
    for name in params:
        if name in frame and frame[name].map(type).nunique() > 1:
            frame[name] = frame[name].astype(str)  # mixed types cannot share a Parquet column
    return frame


def write_table(frame: pd.DataFrame, sweep_dir: Path) -> Path:
    path = sweep_dir / TABLE_FILE
    temporary = sweep_dir / f".{TABLE_FILE}.tmp"
    frame.to_parquet(temporary, index=False)
    temporary.replace(path)
    return path


def open_sweep(sweep: str | Path) -> pd.DataFrame:
    """The sweep table (pandas), one row per run; `run_dir` links each row to its run.

    `sweep` is an id (as printed by `scalelab sweep`) or a sweep directory. The
    table's `attrs` carry the sweep's id, directory and grid.
    """
    from scalelab.sweep.state import read_sweep, resolve_sweep

    sweep_dir = resolve_sweep(sweep)
    data = read_sweep(sweep_dir)
    path = sweep_dir / TABLE_FILE
    frame = pd.read_parquet(path) if path.is_file() else pd.DataFrame()
    frame.attrs.update({"sweep_id": data.get("id"), "dir": str(sweep_dir), "vary": data["vary"]})
    return frame


def _json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}
