"""Put every series of a run on one time grid.

Counters become per-second rates (a drop in value is a reset, counted as
Prometheus's `rate()` counts it), gauges take their last value in each step,
and histograms become their p99 over each step from the `_bucket` deltas
(Prometheus's `histogram_quantile` interpolation). Bins the data does not
cover are NaN, never zero.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

HIDDEN_LABELS = frozenset({"run_id", "__name__"})
HISTOGRAM_QUANTILE = 0.99


@dataclass(frozen=True)
class Grid:
    """`n` bins of `step_s` seconds from `start_ns`; times shown relative to `origin_ns`."""

    start_ns: int
    step_s: float
    n: int
    origin_ns: int

    @classmethod
    def covering(cls, start_ns: int, end_ns: int, step_s: float, origin_ns: int) -> Grid:
        n = max(0, math.ceil((end_ns - start_ns) / (step_s * 1e9) - 1e-9))
        return cls(start_ns, step_s, n, origin_ns)

    @property
    def edges_ns(self) -> np.ndarray:
        return self.start_ns + np.arange(self.n + 1) * self.step_s * 1e9

    @property
    def seconds(self) -> np.ndarray:
        """Each bin's start, in seconds since `origin_ns`."""
        return (self.edges_ns[:-1] - self.origin_ns) / 1e9

    def inside(self, window: tuple[int, int]) -> np.ndarray:
        """Bins lying wholly inside the window (to the microsecond)."""
        starts = np.arange(self.n) * self.step_s + (self.start_ns - window[0]) / 1e9
        ends = starts + self.step_s - (window[1] - window[0]) / 1e9
        return (starts >= -1e-6) & (ends <= 1e-6)

    def bin_of(self, times_ns: np.ndarray) -> np.ndarray:
        """The bin index of each time; -1 outside the grid."""
        offset = np.asarray(times_ns, dtype=np.int64) - self.start_ns  # exact before dividing
        index = np.floor(offset / (self.step_s * 1e9)).astype(np.int64)
        return np.where((index >= 0) & (index < self.n), index, -1)


def counter_rate(times_ns: np.ndarray, values: np.ndarray, grid: Grid) -> np.ndarray:
    """Per-second increase in each bin; NaN where the samples do not span the bin."""
    if len(times_ns) < 2:
        return np.full(grid.n, np.nan)
    order = np.argsort(times_ns, kind="stable")
    times, corrected = times_ns[order].astype(np.float64), reset_corrected(values[order])
    cumulative = np.interp(grid.edges_ns, times, corrected, left=np.nan, right=np.nan)
    return np.diff(cumulative) / grid.step_s


def counter_increase(
    times_ns: np.ndarray, values: np.ndarray, window: tuple[int, int]
) -> tuple[float, float]:
    """(increase, seconds covered) of a counter over a window, clipped to its samples."""
    if len(times_ns) < 2:
        return 0.0, 0.0
    order = np.argsort(times_ns, kind="stable")
    times, corrected = times_ns[order].astype(np.float64), reset_corrected(values[order])
    start, end = max(window[0], times[0]), min(window[1], times[-1])
    if end <= start:
        return 0.0, 0.0
    at = np.interp([start, end], times, corrected)
    return float(at[1] - at[0]), (end - start) / 1e9


def reset_corrected(values: np.ndarray) -> np.ndarray:
    """A counter made monotonic: after a drop (reset) the earlier total is carried on."""
    drops = np.diff(values) < 0
    carried = np.concatenate([[0.0], np.cumsum(np.where(drops, values[:-1], 0.0))])
    return np.asarray(values, dtype=np.float64) + carried


def gauge_last(
    times_ns: np.ndarray, values: np.ndarray, grid: Grid, stale_s: float | None = None
) -> np.ndarray:
    """The last value at or before each bin's end, NaN when older than `stale_s`."""
    if len(times_ns) == 0:
        return np.full(grid.n, np.nan)
    order = np.argsort(times_ns, kind="stable")
    times, ordered = times_ns[order].astype(np.float64), values[order].astype(np.float64)
    ends = grid.edges_ns[1:]
    index = np.searchsorted(times, ends, side="right") - 1
    picked = np.where(index >= 0, ordered[np.clip(index, 0, None)], np.nan)
    age = ends - times[np.clip(index, 0, None)]
    limit = (stale_s if stale_s is not None else 3 * grid.step_s) * 1e9
    return np.where((index >= 0) & (age <= limit), picked, np.nan)


def bucket_quantile(q: float, bounds: np.ndarray, cumulative: np.ndarray) -> float:
    """Prometheus's histogram_quantile on cumulative bucket counts (last bound is +Inf)."""
    total = cumulative[-1]
    if not total > 0:
        return math.nan
    rank = q * total
    b = int(np.searchsorted(cumulative, rank, side="left"))
    if b >= len(bounds) - 1:
        return float(bounds[-2]) if len(bounds) > 1 else math.nan
    lower = 0.0 if b == 0 else float(bounds[b - 1])
    below = 0.0 if b == 0 else float(cumulative[b - 1])
    inside = float(cumulative[b]) - below
    if inside <= 0:
        return float(bounds[b])
    return lower + (float(bounds[b]) - lower) * (rank - below) / inside


def histogram_quantile_series(
    buckets: dict[float, tuple[np.ndarray, np.ndarray]], grid: Grid, q: float = HISTOGRAM_QUANTILE
) -> np.ndarray:
    """The q-quantile in each bin from `{le: (times_ns, cumulative count)}` bucket series."""
    bounds = np.array(sorted(buckets))
    if len(bounds) < 2 or not math.isinf(bounds[-1]):
        return np.full(grid.n, np.nan)
    increases = np.vstack([counter_rate(*buckets[le], grid) * grid.step_s for le in bounds])
    increases = np.fmax.accumulate(increases, axis=0)  # buckets are cumulative: make them so
    out = np.full(grid.n, np.nan)
    for i in range(grid.n):
        column = increases[:, i]
        if not np.isnan(column).any():
            out[i] = bucket_quantile(q, bounds, column)
    return out


def metric_kind(metric: str, labels: dict[str, str], histograms: set[str]) -> str:
    """'bucket', 'counter', 'gauge' or 'skip' from the Prometheus naming conventions."""
    if metric.endswith("_bucket") and "le" in labels:
        return "bucket"
    base = metric.rsplit("_", 1)[0]
    if metric.endswith("_created") or (metric.endswith(("_sum", "_count")) and base in histograms):
        return "skip"
    if metric.endswith(("_total", "_sum", "_count")):
        return "counter"
    return "gauge"


def series_names(keys: Iterable[tuple[str, dict[str, str]]]) -> dict[tuple[str, str], str]:
    """Readable names: the metric plus only the labels that differ between its series."""
    by_metric: dict[str, list[dict[str, str]]] = defaultdict(list)
    for metric, labels in keys:
        by_metric[metric].append(labels)
    names = {}
    for metric, label_sets in by_metric.items():
        varying = sorted(
            {
                k
                for ls in label_sets
                for k in ls
                if k not in HIDDEN_LABELS and len({s.get(k) for s in label_sets}) > 1
            }
        )
        for labels in label_sets:
            shown = ",".join(f"{k}={labels.get(k, '')}" for k in varying)
            names[(metric, _key(labels))] = f"{metric}{{{shown}}}" if shown else metric
    return names


def resample_metrics(metrics: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Every series of a long-format metrics frame as one column on the grid."""
    index = pd.Index(grid.seconds, name="t_s")
    if metrics.empty or grid.n == 0:
        return pd.DataFrame(index=index)
    times = metrics["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    values = metrics["value"].to_numpy(dtype=np.float64)
    groups = metrics.groupby(["metric", "labels"], observed=True, sort=True).indices
    parsed = {(str(m), str(text)): json.loads(text) for m, text in groups}
    histograms = {m[: -len("_bucket")] for m, _ in parsed if m.endswith("_bucket")}
    plain: dict[tuple[str, str], np.ndarray] = {}
    buckets: dict[tuple[str, str], dict[float, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for (metric, text), idx in groups.items():
        labels = parsed[(str(metric), str(text))]
        kind = metric_kind(str(metric), labels, histograms)
        t, v = _finite(times[idx], values[idx])
        if kind == "bucket":
            rest = {k: val for k, val in labels.items() if k != "le"}
            buckets[(str(metric)[: -len("_bucket")], _key(rest))][float(labels["le"])] = (t, v)
        elif kind != "skip":
            rate = kind == "counter"
            plain[(str(metric), _key(labels))] = (
                counter_rate(t, v, grid) if rate else gauge_last(t, v, grid)
            )
    names = series_names([(m, json.loads(k)) for m, k in [*plain, *buckets]])
    named = {names[key]: series for key, series in plain.items()}
    for key, per_le in buckets.items():
        named[f"{names[key]} p99"] = histogram_quantile_series(per_le, grid)
    return pd.DataFrame(named, index=index)


def nan_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum ignoring NaN, but NaN where both are NaN (no data is not zero)."""
    return np.where(np.isnan(a) & np.isnan(b), np.nan, np.nansum([a, b], axis=0))


def _key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _finite(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(values)
    return times[keep], values[keep]
