"""A run's data the way a notebook wants it: datetimes, seconds since load start, rates.

    >>> run = open_run("latest")
    >>> run.messages[["done", "t_s", "latency_s", "worker"]]      # one row per message
    >>> run.samples.query("metric == 'node_memory_MemAvailable_bytes'")
    >>> run.rate("process_cpu_seconds_total", by="component")   # cores, per component

Every `*_ns` epoch column of qos.parquet also comes as a timezone-aware UTC
datetime (`done_ns` → `done`); `t_s` is seconds since the load phase
started (negative during warmup), `phase` the phase a message was offered
in. Columns that do not apply to the run (all empty: a Flink run has no
inference stage, a local run no pod label) are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scalelab.analysis.resample import Grid, counter_rate

if TYPE_CHECKING:
    from scalelab.analysis.dataset import Run

TIME_COLUMNS = ("intended_ns", "sent_ns", "consume_ns", "done_ns", "tracked_ns")


def load_start_ns(run: Run) -> int | None:
    """t = 0 of `t_s`: the start of the load phase (else of the first phase recorded)."""
    window = run.load_window or next(iter(run.phases.values()), None)
    return window[0] if window else None


def messages(run: Run) -> pd.DataFrame:
    """qos.parquet with datetimes, `t_s` (from the intended send time) and `phase`."""
    from scalelab.analysis.dataset import phase_of

    qos = applicable(run.qos.copy())
    for column in TIME_COLUMNS:
        if column in qos:
            qos[column[:-3]] = pd.to_datetime(qos[column], unit="ns", utc=True)
    start = load_start_ns(run)
    if "intended_ns" in qos:
        qos["t_s"] = (qos["intended_ns"] - (start or 0)) / 1e9 if start is not None else np.nan
        qos["phase"] = phase_of(run, qos["intended_ns"])
    return qos


def samples(run: Run) -> pd.DataFrame:
    """metrics.parquet (UTC `timestamp`) with `t_s` since load start; empty label columns out."""
    metrics = applicable(run.metrics.copy())
    start = load_start_ns(run)
    if "timestamp" in metrics:
        ns = metrics["timestamp"].astype("int64") if len(metrics) else metrics["timestamp"]
        metrics["t_s"] = (ns - start) / 1e9 if start is not None and len(metrics) else np.nan
    return metrics


def counter_rates(run: Run, metric: str, by: str | None = "component") -> pd.DataFrame:
    """A counter as per-second rates on the run's grid (one scrape interval a step).

    One column per value of the label `by` (the series sharing it summed), or a
    single column named after the metric with `by=None`. Indexed by `t_s`
    (seconds since load start), with the step's start as a UTC `time` column.
    Counter resets count as Prometheus's `rate()` counts them.
    """
    grid = _grid(run)
    rows = run.metrics[run.metrics["metric"] == metric] if not run.metrics.empty else run.metrics
    out = pd.DataFrame(index=pd.Index(grid.seconds if grid else [], name="t_s"))
    if grid is None or rows.empty:
        return out
    keys = ["labels"] if by is None else [by, "labels"]
    for group, part in rows.groupby(keys, observed=True, dropna=False):
        times = part["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        values = counter_rate(times, part["value"].to_numpy(np.float64), grid)
        name = metric if by is None else str(group[0])
        out[name] = values if name not in out else np.nansum([out[name], values], axis=0)
    out.insert(0, "time", pd.to_datetime(grid.edges_ns[:-1].astype(np.int64), unit="ns", utc=True))
    return out


def applicable(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the columns with at least one value (the others do not apply to this run)."""
    if frame.empty:
        return frame
    return frame.loc[:, [c for c in frame.columns if frame[c].notna().any()]]


def _grid(run: Run) -> Grid | None:
    start = load_start_ns(run)
    if start is None or not run.phases:
        return None
    first = min(window[0] for window in run.phases.values())
    last = max(window[1] for window in run.phases.values())
    step = max(1.0, run.scrape_interval)
    return Grid.covering(first, last, step, start)
