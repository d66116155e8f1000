"""What the scorecard's charts draw of one run, in seconds since its traffic started.

- replicas: the autoscaler's timeline (`autoscaler.json`, else run.json
  `results.autoscaler`), the steps its replica-seconds integrate; a run without an
  autoscaler keeps `workload.workers` until its load ends.
- offered load: the producer's target rate (its gauge, else summary.json's mean).
- latency: at each percentile the run's SLO names (p95 without one), per 1 s bin of the
  load phase by intended send time, each message once: the bins the SLO-violation
  seconds count (`scorecard.per_second`); warmup and drain are not drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scalelab.analysis.dataset import Run, read_json
from scalelab.analysis.scorecard import PERCENTILES, first_completions, per_second
from scalelab.analysis.series import own_metrics, run_grid, summary_target, target_rate


@dataclass
class Lines:
    label: str
    replicas: tuple[list[float], list[float]]  # t (s), workers: steps
    offered: tuple[np.ndarray, np.ndarray]  # t (s), target rate (msg/s)
    latency: dict[str, tuple[np.ndarray, np.ndarray]]  # percentile: bin start (s), latency (s)
    unit: str = "workers"  # what was scaled: "workers", or a Flink job's "parallelism"


def lines(run: Run, label: str, percentiles: Sequence[str]) -> Lines:
    """The run's lines, its latency at each of `percentiles` (keys of PERCENTILES)."""
    return Lines(
        label, replicas(run), offered_load(run), latency(run, percentiles), scale_unit(run)
    )


def scale_unit(run: Run) -> str:
    """What the run scaled: a Flink job's parallelism, or the workers."""
    scaler = read_json(run.dir / "autoscaler.json") or {}
    kind = (run.spec.get("workload") or {}).get("kind")
    return str(scaler.get("scale_unit") or ("parallelism" if kind == "flink" else "workers"))


def latency(run: Run, percentiles: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each percentile per 1 s bin of the load phase; nothing without a finished load phase."""
    window = run.load_window
    if window is None:
        return {}
    intended, latency_s, _ = first_completions(run.dir)
    origin = run.origin_ns or window[0]
    out = {}
    for name in percentiles:
        starts, value = per_second(intended, latency_s, PERCENTILES[name], window)
        out[name] = ((starts - origin) / 1e9, value)
    return out


def replicas(run: Run) -> tuple[list[float], list[float]]:
    """(t, replicas) steps: each holds until the next; the last is when the autoscaler stopped."""
    scaler = read_json(run.dir / "autoscaler.json") or (
        (run.record.get("results") or {}).get("autoscaler") or {}
    )
    steps = [(float(p["t"]), float(p["replicas"])) for p in scaler.get("timeline") or []]
    if steps:
        return [t for t, _ in steps], [n for _, n in steps]
    workload = run.spec.get("workload") or {}
    workers = workload.get("parallelism" if workload.get("kind") == "flink" else "workers")
    if isinstance(workers, int) and run.origin_ns is not None and run.load_window is not None:
        return [0.0, (run.load_window[1] - run.origin_ns) / 1e9], [float(workers)] * 2
    return [], []


def offered_load(run: Run) -> tuple[np.ndarray, np.ndarray]:
    grid = run_grid(run)
    if grid is None:
        return np.zeros(0), np.zeros(0)
    rate = target_rate(own_metrics(run), grid) or summary_target(run, grid)
    if not rate:
        return np.zeros(0), np.zeros(0)
    return grid.seconds, rate["target rate"]
