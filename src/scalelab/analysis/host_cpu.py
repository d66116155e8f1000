"""How much of the host's busy CPU during the load phase was not the run's own (noisy neighbours).

Preferred source: summary.json's `cpu_host`, sampled by the orchestrator
(`run/resources.py`: host busy CPU seconds from the kernel, the run's
processes and the orchestrator itself). Without it, the same figure from
metrics.parquet: host busy CPU (node exporter) against the components'
`process_cpu_seconds_total` over the load window; the orchestrator is not
scraped there, so that share slightly overstates the foreign part.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scalelab.analysis.dataset import Run, Window
from scalelab.analysis.resample import counter_increase
from scalelab.analysis.series import busy_cpu_rows, own_metrics

SAMPLED_BASIS = "host busy CPU seconds sampled by the orchestrator (psutil), load phase"
METRICS_BASIS = (
    "host busy CPU (node_cpu_seconds_total) against the components' process_cpu_seconds_total, "
    "load phase (orchestrator not counted)"
)


def foreign_cpu(run: Run) -> dict[str, Any] | None:
    """busy_seconds, run_seconds, foreign_share and basis; None where unknown."""
    sampled = run.summary.get("cpu_host") or {}
    if sampled.get("foreign_share") is not None:
        return {**sampled, "basis": SAMPLED_BASIS}
    return _from_metrics(run)


def _from_metrics(run: Run) -> dict[str, Any] | None:
    window = run.load_window
    metrics = own_metrics(run)
    if window is None or metrics.empty:
        return None
    busy = _increase(busy_cpu_rows(metrics), window)
    process = metrics[metrics["metric"] == "process_cpu_seconds_total"]
    if "component" in process:
        process = process[process["component"].notna()]
    own = _increase(process, window)
    if busy <= 0 or process.empty:
        return None
    foreign = max(0.0, busy - own)
    return {
        "busy_seconds": round(busy, 3),
        "run_seconds": round(own, 3),
        "foreign_seconds": round(foreign, 3),
        "foreign_share": round(foreign / busy, 4),
        "basis": METRICS_BASIS,
    }


def _increase(rows: pd.DataFrame, window: Window) -> float:
    total = 0.0
    for _, part in rows.groupby("labels", observed=True):
        times = part["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        total += counter_increase(times, part["value"].to_numpy(np.float64), window)[0]
    return total
