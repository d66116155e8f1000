"""Headline figures of a run from qos.parquet, producer.json and the phase windows.

Warmup is excluded. Each message id counts once, at its first completion
(delivery is at-least-once; duplicates are reported apart, in `duplicates`).

- `throughput` is what the system served: messages whose first completion
  (`done_ns`) falls in the load window, per second of the window. The
  offered rate stands next to it (`rate.target_rate`).
- Latency percentiles are over the messages whose intended send time falls
  in the load window and that completed.
- `completion` says how many of the load window's messages (by sequence
  number) completed, were dead-lettered, or never completed (survivorship);
  the verdict is INVALID when any never completed.
- `steps`: per-segment figures of a step, ramp or diurnal load (`steps.py`).
- `faults`: per injected fault, the partitions taken over and how fast.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from scalelab.analysis.completion import (
    Qos,
    completed_in,
    first_completions,
    intended_in,
    load_seq_range,
    own_rows,
    survivorship,
)
from scalelab.analysis.dataset import Run
from scalelab.analysis.faults import fault_table
from scalelab.analysis.steps import LoadPlan, load_plan, step_table

PERCENTILES = (50, 95, 99)
STAGES = ("queue", "decode", "preprocess", "inference", "postprocess")
THROUGHPUT_BASIS = (
    "messages completed in the load window (first completion of each id, by done time) per second"
)


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


def rates(
    producer: dict[str, Any], load_start_ns: int, load_end_ns: int, target: float
) -> dict[str, Any]:
    """Target (from the schedule) against achieved (sends of the load phase actually made)."""
    seconds = max(1e-9, (load_end_ns - load_start_ns) / 1e9)
    per_second = producer.get("per_second", [])
    if isinstance(producer.get("load_sent"), int):
        sent = float(producer["load_sent"])
    else:
        origin = producer.get("start_ns", load_start_ns)
        sent = sends_after(per_second, (load_start_ns - origin) / 1e9)
    achieved = sent / seconds
    return {
        "target_rate": round(target, 3),
        "achieved_rate": round(achieved, 3),
        "achieved_ratio": round(achieved / target, 4) if target else None,
        "schedule_lag_p50_s": producer.get("lag_p50_s"),
        "schedule_lag_p99_s": producer.get("lag_p99_s"),
        "schedule_lag_max_s": producer.get("lag_max_s"),
        "send_errors": producer.get("errors", 0),
        "flush_undelivered": producer.get("flush_undelivered"),
        "per_second_sent": per_second,
    }


def sends_after(per_second: list[int], start_s: float) -> float:
    """Sends from `start_s` on, from per-second counts; the boundary second counts pro rata.

    The load phase rarely starts on a whole second after the producer's
    start (a 2.5 s warmup): rounding the boundary would move half a second's
    sends into or out of the load phase. The load window ends at the last
    send, so every later second counts whole.
    """
    whole = math.ceil(start_s)
    partial = per_second[whole - 1] * (whole - start_s) if 0 < whole <= len(per_second) else 0.0
    return float(sum(per_second[max(0, whole) :])) + partial


def summarise(
    run_dir: Path,
    window: tuple[int, int],
    target_rate: float,
    extras: dict[str, Any],
    *,
    dead_letter_ids: Collection[str] = (),
) -> dict[str, Any]:
    """Build summary.json's content; `extras` carries accounting, CPU and lag samples."""
    start_ns, end_ns = window
    run = Run(Path(run_dir))
    producer = _read_json(run.dir / "producer.json")
    every = own_rows(read_qos(run.dir / "qos.parquet"), run.record.get("id"))
    first, duplicates = first_completions(every)
    load = intended_in(first, start_ns, end_ns)
    seconds = max(1e-9, (end_ns - start_ns) / 1e9)
    completed = completed_in(first, start_ns, end_ns)
    plan = load_plan(run.spec, _mean_frame_bytes(producer))
    seq_range, basis = load_seq_range(producer, plan.load_seq_range() if plan else None)
    origin = _origin_ns(producer, run, start_ns)
    summary: dict[str, Any] = {
        "window": {"start_ns": start_ns, "end_ns": end_ns, "seconds": round(seconds, 3)},
        "rate": rates(producer, start_ns, end_ns, target_rate),
        "throughput": round(completed / seconds, 3),
        "throughput_basis": THROUGHPUT_BASIS,
        "completed_in_load": completed,
        "processed_in_load": int(load["latency_s"].size) if load else 0,
        "duplicates": duplicates,
        "completion": survivorship(
            first, seq_range, basis, dead_letter_ids, _dead_lettered(extras)
        ),
        "latency_s": latency_stats(load.get("latency_s", np.array([]))),
        "stages_s": {s: latency_stats(load.get(f"{s}_s", np.array([]))) for s in STAGES},
        "per_worker": _per_worker(first, window),
        "faults": fault_table(run.record.get("events") or [], every, origin),
    }
    summary.update(extras)
    if isinstance(summary.get("flink"), dict):
        summary["flink"]["rescales"] = rescale_pauses(every, summary["flink"].get("rescales", []))
    summary.update(_steps(plan, first, origin, window, summary.get("consumer_lag") or []))
    return summary


def _steps(
    plan: LoadPlan | None, first: Qos, origin: int, window: tuple[int, int], lag: list[Any]
) -> dict[str, Any]:
    if plan is None or not plan.segments:
        return {}
    return {"steps": step_table(plan, first, origin, window, lag)}


RESCALE_TAIL_NS = 5_000_000_000  # outputs looked at after a rescale completed


def rescale_pauses(every: Qos, rescales: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each rescale with `pause_s`: the longest gap between two consecutive outputs (any
    record, duplicates included) that overlaps the rescale, from its request to a few
    seconds after it completed; and `usual_gap_s`, the median gap over the whole run,
    for scale (at 10 msg/s outputs are 0.1 s apart anyway)."""
    done = (
        np.sort(every["done_ns"]) if every and "done_ns" in every else np.array([], dtype=np.int64)
    )
    gaps = np.diff(done)
    usual = float(np.median(gaps)) / 1e9 if gaps.size else None
    out = []
    for change in rescales:
        start = int(change.get("requested_ns") or 0)
        end = (
            int(change.get("completed_ns") or change.get("effective_ns") or start) + RESCALE_TAIL_NS
        )
        overlapping = (done[1:] >= start) & (done[:-1] <= end) if gaps.size else np.array([], bool)
        pause = float(gaps[overlapping].max()) / 1e9 if overlapping.any() else None
        out.append({**change, "pause_s": pause, "usual_gap_s": usual})
    return out


def _dead_lettered(extras: dict[str, Any]) -> int:
    """The accounting's dead-letter count, for when the caller passes no ids."""
    return int((extras.get("accounting") or {}).get("dead_lettered") or 0)


def _origin_ns(producer: dict[str, Any], run: Run, load_start_ns: int) -> int:
    """When traffic started: the producer's start, else the warmup's, else the load's."""
    if isinstance(producer.get("start_ns"), int):
        return int(producer["start_ns"])
    return run.origin_ns if run.origin_ns is not None else load_start_ns


def _mean_frame_bytes(producer: dict[str, Any]) -> float | None:
    acked, size = producer.get("acked"), producer.get("bytes")
    return float(size) / acked if acked and size else None


def _per_worker(first: Qos, window: tuple[int, int]) -> dict[str, Any]:
    """Per worker: messages it completed first inside the load window, and their p99."""
    if not first:
        return {}
    seconds = max(1e-9, (window[1] - window[0]) / 1e9)
    inside = (first["done_ns"] >= window[0]) & (first["done_ns"] < window[1])
    out = {}
    for worker in sorted(set(first["worker"][inside].tolist())):
        mask = inside & (first["worker"] == worker)
        out[str(worker)] = {
            "processed": int(mask.sum()),
            "throughput": round(float(mask.sum()) / seconds, 3),
            "latency_p99_s": float(np.percentile(first["latency_s"][mask], 99)),
        }
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}
