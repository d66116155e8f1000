"""What the scorecard's charts draw of one run, in seconds since its traffic started.

- replicas: the autoscaler's timeline (`autoscaler.json`, else run.json
  `results.autoscaler`), the steps its replica-seconds integrate; a run without an
  autoscaler keeps `workload.workers` until its load ends.
- offered load: the producer's target rate (its gauge, else summary.json's mean).
- p95 latency: per 1 s bin by intended send time, each message once, the bins the
  SLO-violation seconds count (`scorecard.p95_per_second`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalelab.analysis.dataset import Run, read_json
from scalelab.analysis.scorecard import first_completions, p95_per_second
from scalelab.analysis.series import own_metrics, run_grid, summary_target, target_rate


@dataclass
class Lines:
    label: str
    replicas: tuple[list[float], list[float]]  # t (s), workers: steps
    offered: tuple[np.ndarray, np.ndarray]  # t (s), target rate (msg/s)
    p95_s: tuple[np.ndarray, np.ndarray]  # bin start (s), p95 latency (s)


def lines(run: Run, label: str) -> Lines:
    intended, latency, _ = first_completions(run.dir)
    origin = run.origin_ns or (int(intended.min()) if intended.size else 0)
    starts, p95 = p95_per_second(intended, latency)
    return Lines(label, replicas(run), offered_load(run), ((starts - origin) / 1e9, p95))


def replicas(run: Run) -> tuple[list[float], list[float]]:
    """(t, replicas) steps: each holds until the next; the last is when the autoscaler stopped."""
    scaler = read_json(run.dir / "autoscaler.json") or (
        (run.record.get("results") or {}).get("autoscaler") or {}
    )
    steps = [(float(p["t"]), float(p["replicas"])) for p in scaler.get("timeline") or []]
    if steps:
        return [t for t, _ in steps], [n for _, n in steps]
    workers = (run.spec.get("workload") or {}).get("workers")
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
