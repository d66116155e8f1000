"""The headline time series of a run on one grid: what the plots and the heat map show.

From qos.parquet: input rate (sends), throughput (completions), end-to-end
latency p50/p95/p99 per step (by completion time). From summary.json: the
consumer lag. From metrics.parquet: CPU cores per component and the host's
busy cores. Energy adds `power` (see `energy.power_series`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab.analysis.dataset import Run
from scalelab.analysis.resample import Grid, counter_rate, gauge_last, nan_add

MIN_STEP_S = 1.0
HOST_IDLE_MODES = frozenset({"idle", "iowait", "steal"})
UNITS = {
    "target rate": "msg/s",
    "input rate": "msg/s",
    "throughput": "frames/s",
    "latency p50": "s",
    "latency p95": "s",
    "latency p99": "s",
    "consumer lag": "messages",
    "host cpu busy": "cores",
    "power": "W",
}


def run_grid(run: Run) -> Grid | None:
    """From the start of traffic to the end of the cooldown; None without a load phase."""
    origin, load = run.origin_ns, run.load_window
    if origin is None or load is None:
        return None
    end = max(load[1], run.phases.get("cooldown", load)[1])
    step = max(MIN_STEP_S, run.scrape_interval)
    return Grid.covering(origin, end, step, origin)


def own_metrics(run: Run) -> pd.DataFrame:
    """The run's own series: rows labelled with another run id are left out, except those
    of the stack `scalelab up` started when the run used it (its broker and host)."""
    metrics = run.metrics
    if metrics.empty or "run_id" not in metrics or metrics["run_id"].isna().all():
        return metrics
    stack = ((run.record.get("results") or {}).get("stack") or {}).get("run_id")
    ids = {run.id, *([stack] if stack else [])}
    return metrics[metrics["run_id"].isna() | metrics["run_id"].isin(ids)]


def key_series(run: Run, grid: Grid, metrics: pd.DataFrame | None = None) -> pd.DataFrame:
    """Headline series as columns, indexed by seconds since traffic started."""
    metrics = own_metrics(run) if metrics is None else metrics
    frame = pd.DataFrame(index=pd.Index(grid.seconds, name="t_s"))
    for name, values in {
        **(target_rate(metrics, grid) or summary_target(run, grid)),
        **qos_series(first_completion_rows(run.qos), grid),
        "consumer lag": lag_series(run, grid),
        **component_cpu(metrics, grid),
        **host_cpu(metrics, grid),
    }.items():
        frame[name] = values
    return frame


def first_completion_rows(qos: pd.DataFrame) -> pd.DataFrame:
    """Each message once, at its first completion: redeliveries are duplicates, not traffic."""
    if qos.empty or "id" not in qos:
        return qos
    return qos.sort_values("done_ns", kind="stable").drop_duplicates("id", keep="first")


def qos_series(qos: pd.DataFrame, grid: Grid) -> dict[str, np.ndarray]:
    if qos.empty:
        return {}
    sent = np.bincount(_bins(grid, qos["sent_ns"]), minlength=grid.n + 1)[1:]
    done_bins = _bins(grid, qos["done_ns"])
    done = np.bincount(done_bins, minlength=grid.n + 1)[1:]
    latency = pd.Series(qos["latency_s"].to_numpy(), index=done_bins - 1)
    latency = latency[latency.index >= 0].groupby(level=0)
    out = {"input rate": sent / grid.step_s, "throughput": done / grid.step_s}
    for q in (50, 95, 99):
        per_bin = latency.quantile(q / 100)
        out[f"latency p{q}"] = per_bin.reindex(range(grid.n)).to_numpy()
    return out


def lag_series(run: Run, grid: Grid) -> np.ndarray:
    """Consumer lag samples (seconds since traffic started) as a gauge on the grid."""
    samples = run.summary.get("consumer_lag") or []
    if not samples or run.origin_ns is None:
        return np.full(grid.n, np.nan)
    times = np.array([run.origin_ns + s["t"] * 1e9 for s in samples])
    values = np.array([float(s["lag"]) for s in samples])
    return gauge_last(times, values, grid)


def target_rate(metrics: pd.DataFrame, grid: Grid) -> dict[str, np.ndarray]:
    """The producer's target-rate gauge; of several series, the newest (this run's producer).

    Every component that imports the producer module exports the gauge at 0 (a worker
    the autoscaler started late would be "the newest"): only the producer's count."""
    rows = _rows(metrics, "scalelab_producer_target_rate")
    if "component" in rows:
        producers = rows[rows["component"].astype(str) == "producer"]
        rows = producers if not producers.empty else rows
    if rows.empty:
        return {}
    newest = rows.groupby("labels", observed=True)["timestamp"].min().idxmax()
    part = rows[rows["labels"] == newest]
    times = part["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return {"target rate": gauge_last(times, part["value"].to_numpy(np.float64), grid)}


def summary_target(run: Run, grid: Grid) -> dict[str, np.ndarray]:
    """Without the producer's gauge: summary.json's mean target rate over the load phase."""
    target, window = (run.summary.get("rate") or {}).get("target_rate"), run.load_window
    if not target or window is None:
        return {}
    return {"target rate": np.where(grid.inside(window), float(target), np.nan)}


def component_cpu(metrics: pd.DataFrame, grid: Grid) -> dict[str, np.ndarray]:
    """Cores used by each component (process_cpu_seconds_total rates summed per component)."""
    rows = _rows(metrics, "process_cpu_seconds_total")
    if rows.empty or "component" not in rows or rows["component"].isna().all():
        return {}
    per = _sum_by(rows.dropna(subset=["component"]), grid, "component", counter=True)
    return {f"cpu {name}": per[name].to_numpy() for name in sorted(per.columns)}


def host_cpu(metrics: pd.DataFrame, grid: Grid) -> dict[str, np.ndarray]:
    """Busy cores of the host(s): node_cpu_seconds_total outside idle, iowait and steal."""
    busy = busy_cpu_rows(metrics)
    if busy.empty:
        return {}
    per = _sum_by(busy, grid, "labels", counter=True)
    return {"host cpu busy": per.sum(axis=1, min_count=1).to_numpy()} if len(per.columns) else {}


def busy_cpu_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """node_cpu_seconds_total rows of the busy modes (not idle, iowait or steal)."""
    rows = _rows(metrics, "node_cpu_seconds_total")
    if rows.empty:
        return rows
    idle = "|".join(f'"mode":"{mode}"' for mode in sorted(HOST_IDLE_MODES))
    return rows[~rows["labels"].astype(str).str.contains(idle)]


def _sum_by(rows: pd.DataFrame, grid: Grid, key: str, counter: bool) -> pd.DataFrame:
    """Resample each (labels) series, then sum the series sharing `key`'s value."""
    sums: dict[str, np.ndarray] = {}
    for (group, _), part in rows.groupby([key, "labels"], observed=True):
        times = part["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        values = part["value"].to_numpy(dtype=np.float64)
        series = counter_rate(times, values, grid) if counter else gauge_last(times, values, grid)
        previous = sums.get(str(group))
        sums[str(group)] = series if previous is None else nan_add(previous, series)
    return pd.DataFrame(sums, index=range(grid.n))


def _rows(metrics: pd.DataFrame, name: str) -> pd.DataFrame:
    if metrics.empty:
        return metrics
    return metrics[metrics["metric"] == name]


def _bins(grid: Grid, times: pd.Series) -> np.ndarray:
    """Bin index + 1 (0 = outside the grid), ready for bincount."""
    return grid.bin_of(times.to_numpy(dtype=np.int64)) + 1
