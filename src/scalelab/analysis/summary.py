"""Headline figures of a run from qos.parquet, producer.json and the phase windows.

Warmup is excluded: latency and throughput count messages whose intended send
time falls in the load phase.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

PERCENTILES = (50, 95, 99)
STAGES = ("queue", "decode", "preprocess", "inference", "postprocess")


def latency_stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    stats: dict[str, float | None] = {f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}
    stats["max"] = float(values.max())
    stats["mean"] = float(values.mean())
    return stats


def read_qos(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    table = pq.read_table(path)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def in_window(qos: dict[str, np.ndarray], start_ns: int, end_ns: int) -> dict[str, np.ndarray]:
    if not qos:
        return {}
    mask = (qos["intended_ns"] >= start_ns) & (qos["intended_ns"] < end_ns)
    return {name: values[mask] for name, values in qos.items()}


def rates(
    producer: dict[str, Any], load_start_ns: int, load_end_ns: int, target: float
) -> dict[str, Any]:
    """Target (from the schedule) against achieved (sends per second actually made)."""
    seconds = max(1e-9, (load_end_ns - load_start_ns) / 1e9)
    per_second = producer.get("per_second", [])
    warm = int(round((load_start_ns - producer.get("start_ns", load_start_ns)) / 1e9))
    achieved = int(sum(per_second[warm:])) / seconds
    return {
        "target_rate": round(target, 3),
        "achieved_rate": round(achieved, 3),
        "achieved_ratio": round(achieved / target, 4) if target else None,
        "schedule_lag_p50_s": producer.get("lag_p50_s"),
        "schedule_lag_p99_s": producer.get("lag_p99_s"),
        "schedule_lag_max_s": producer.get("lag_max_s"),
        "send_errors": producer.get("errors", 0),
        "per_second_sent": per_second,
    }


def summarise(
    run_dir: Path, window: tuple[int, int], target_rate: float, extras: dict[str, Any]
) -> dict[str, Any]:
    """Build summary.json's content; `extras` carries accounting, CPU and lag samples."""
    start_ns, end_ns = window
    producer = _read_json(run_dir / "producer.json")
    qos = in_window(read_qos(run_dir / "qos.parquet"), start_ns, end_ns)
    seconds = max(1e-9, (end_ns - start_ns) / 1e9)
    processed = int(qos["latency_s"].size) if qos else 0
    summary: dict[str, Any] = {
        "window": {"start_ns": start_ns, "end_ns": end_ns, "seconds": round(seconds, 3)},
        "rate": rates(producer, start_ns, end_ns, target_rate),
        "throughput": round(processed / seconds, 3),
        "processed_in_load": processed,
        "latency_s": latency_stats(qos.get("latency_s", np.array([]))),
        "stages_s": {s: latency_stats(qos.get(f"{s}_s", np.array([]))) for s in STAGES},
        "per_worker": _per_worker(qos, seconds),
    }
    summary.update(extras)
    return summary


def _per_worker(qos: dict[str, np.ndarray], seconds: float) -> dict[str, Any]:
    if not qos:
        return {}
    out = {}
    for worker in sorted(set(qos["worker"].tolist())):
        mask = qos["worker"] == worker
        out[str(worker)] = {
            "processed": int(mask.sum()),
            "throughput": round(float(mask.sum()) / seconds, 3),
            "latency_p99_s": float(np.percentile(qos["latency_s"][mask], 99)),
        }
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}
