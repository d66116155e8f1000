"""Which series move together during the load phase, and which one leads.

Pearson and Spearman coefficients over the load window's grid steps, strongest
pairs first (by the weaker of the two, so one outlier step cannot rank a
pair), each with a lagged cross-correlation: the shift within ±`max_lag` steps
at which the pair correlates best. A positive lag means `a` leads `b` (b
follows a, `lag` steps later), as input rate leads consumer lag, lag leads
latency, and CPU leads power. Constant or too-short series are dropped with a
note instead of producing NaN.

Trivial pairs are left out (counted in `trivial`): two series of one quantity
(the throughput and the workers' processed counters, the sent rate and the
broker's bytes in on the input topic, a worker's CPU and its busy seconds),
a metric against its own target (target rate and sent rate), and percentiles
of one distribution (latency p95 and p99). See `quantity`.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MIN_SAMPLES = 5
MAX_LAG_STEPS = 10
TOP_PAIRS = 25
LEAD_MARGIN = 0.05
"""A lag counts as a lead only when it beats the unshifted |r| by this much."""


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    pearson: float
    spearman: float
    samples: int
    lag_steps: int = 0
    lag_s: float = 0.0
    lagged_pearson: float | None = None
    leader: str | None = None


@dataclass
class Correlations:
    step_s: float
    samples: int
    series: list[str] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    matrix: pd.DataFrame = field(default_factory=pd.DataFrame)
    message: str = ""
    trivial: int = 0
    """Pairs left out because both series measure one quantity (see `quantity`)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pairs"] = [_clean(asdict(p)) for p in self.pairs]
        data["matrix"] = {c: _clean(self.matrix[c].to_dict()) for c in self.matrix.columns}
        return data


def correlate(
    frame: pd.DataFrame,
    step_s: float,
    key: list[str] | None = None,
    max_lag: int = MAX_LAG_STEPS,
    top: int = TOP_PAIRS,
) -> Correlations:
    """Pairs of the frame's columns by strength; `key` columns are all kept and form the matrix."""
    kept, dropped = usable_columns(frame)
    result = Correlations(step_s, len(frame), list(kept.columns), dropped)
    if kept.shape[1] < 2:
        result.message = f"fewer than two usable series over {len(frame)} steps: no pairs"
        return result
    pearson = kept.corr(method="pearson", min_periods=MIN_SAMPLES)
    spearman = kept.corr(method="spearman", min_periods=MIN_SAMPLES)
    key_set = set(key or []) & set(kept.columns)
    chosen = rank_pairs(pearson, spearman, key_set, top)
    result.trivial = count_trivial(list(kept.columns))
    lag_limit = min(max_lag, max(0, len(kept) // 4))
    result.pairs = [_with_lag(pair, kept, step_s, lag_limit) for pair in chosen]
    ordered = [c for c in (key or []) if c in key_set]
    result.matrix = pearson.loc[ordered, ordered] if ordered else pd.DataFrame()
    result.message = f"{len(result.pairs)} pairs of {kept.shape[1]} series over {len(kept)} steps"
    return result


def usable_columns(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Columns with enough finite samples that vary; the others with the reason."""
    keep, dropped = [], []
    for name in frame.columns:
        values = frame[name].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size < MIN_SAMPLES:
            dropped.append({"series": str(name), "reason": f"{finite.size} samples"})
        elif np.ptp(finite) <= 1e-12 * max(1.0, float(np.abs(finite).max())):
            dropped.append({"series": str(name), "reason": f"constant at {finite[0]:.6g}"})
        else:
            keep.append(name)
    return frame[keep], dropped


def rank_pairs(
    pearson: pd.DataFrame, spearman: pd.DataFrame, key: set[str], top: int
) -> list[Pair]:
    """Strongest first: every pair of key series, and the `top` strongest pairs of a key
    series with another series (of any two series when no key is given)."""
    names = list(pearson.columns)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            r, rho = float(pearson.at[a, b]), float(spearman.at[a, b])
            if math.isnan(r) or math.isnan(rho) or _same_family(a, b) or trivial_pair(a, b):
                continue
            if not key or a in key or b in key:
                pairs.append(Pair(a, b, r, rho, 0))
    pairs.sort(key=_strength, reverse=True)
    both_key = [p for p in pairs if key and p.a in key and p.b in key]
    others = [p for p in pairs if not (key and p.a in key and p.b in key)][:top]
    return sorted(both_key + others, key=_strength, reverse=True)


def _strength(pair: Pair) -> float:
    """Strong by both measures: a Pearson made by one outlier step does not rank high."""
    return min(abs(pair.pearson), abs(pair.spearman))


def lagged_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, r) maximising |corr(a[t], b[t + lag])| for lag in [-max_lag, max_lag]."""
    best_lag, best_r = 0, math.nan
    for lag in range(-max_lag, max_lag + 1):
        r = _shifted_pearson(a, b, lag)
        if not math.isnan(r) and (math.isnan(best_r) or abs(r) > abs(best_r) + 1e-12):
            best_lag, best_r = lag, r
    return best_lag, best_r


def _shifted_pearson(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    if lag >= 0:
        x, y = a[: len(a) - lag], b[lag:]
    else:
        x, y = a[-lag:], b[: len(b) + lag]
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < MIN_SAMPLES or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _with_lag(pair: Pair, frame: pd.DataFrame, step_s: float, max_lag: int) -> Pair:
    a, b = frame[pair.a].to_numpy(np.float64), frame[pair.b].to_numpy(np.float64)
    samples = int((np.isfinite(a) & np.isfinite(b)).sum())
    lag, r = lagged_correlation(a, b, max_lag)
    leader = None
    if lag != 0 and not math.isnan(r) and abs(r) >= abs(pair.pearson) + LEAD_MARGIN:
        leader = pair.a if lag > 0 else pair.b
    return Pair(
        pair.a,
        pair.b,
        pair.pearson,
        pair.spearman,
        samples,
        lag,
        round(lag * step_s, 6),
        None if math.isnan(r) else r,
        leader,
    )


def _same_family(a: str, b: str) -> bool:
    """Two series of one raw metric (`m{x=1}`, `m{x=2}`): their correlation says little."""
    return "{" in a and "{" in b and a.split("{")[0] == b.split("{")[0]


QUANTILE = re.compile(r"^(?P<series>.*) p\d+(\.\d+)?$")
SENT_METRICS = (
    "kafka_server_brokertopicmetrics_messagesin_total",
    "kafka_server_brokertopicmetrics_bytesin_total",
    "kafka_server_brokertopicmetrics_totalproducerequests_total",
)
COMPLETED_METRICS = ("scalelab_worker_processed_total", "scalelab_tracker_records_total")
CONSUMED_METRICS = (
    "kafka_server_brokertopicmetrics_bytesout_total",
    "kafka_server_brokertopicmetrics_totalfetchrequests_total",
)
STAGE_METRICS = ("scalelab_tracker_stage_seconds", "scalelab_worker_stage_seconds")
CPU_METRICS = ("scalelab_worker_busy_seconds_total", "process_cpu_seconds_total")


def quantity(name: str) -> str:
    """What a series measures: series of one quantity correlate trivially.

    `latency p95` and `latency p99` are both `latency`; the target rate, the sent
    rate and the broker's messages in on the input topic are all `sent`; the
    throughput and the processed counters are `completed`; `cpu worker-0` and
    worker-0's busy seconds are `cpu worker-0`. Other series are themselves, a
    quantile suffix dropped (percentiles of one distribution).
    """
    match = QUANTILE.match(name)
    series = match.group("series") if match else name
    metric, labels = _parse(series)
    topic, component = labels.get("topic", ""), labels.get("component") or labels.get("worker")
    if series == "latency" or metric.startswith("scalelab_tracker_latency_seconds"):
        return "latency"
    if (
        series in ("target rate", "input rate")
        or metric.startswith("scalelab_producer_")
        and (metric.endswith("_total"))
    ):
        return "sent"
    if metric in SENT_METRICS and "input" in topic:
        return "sent"
    if series == "throughput" or metric in COMPLETED_METRICS:
        return "completed"
    if metric in SENT_METRICS + CONSUMED_METRICS and "output" in topic:
        return "completed"
    if metric in CONSUMED_METRICS and "input" in topic:
        return "completed"
    if series.startswith("cpu "):
        return series
    if metric in CPU_METRICS and component:
        return f"cpu {component}"
    if metric in STAGE_METRICS:
        return f"stage {labels.get('stage')} {component}"
    return series


def trivial_pair(a: str, b: str) -> bool:
    return quantity(a) == quantity(b)


def count_trivial(names: list[str]) -> int:
    return sum(trivial_pair(a, b) for i, a in enumerate(names) for b in names[i + 1 :])


def _parse(series: str) -> tuple[str, dict[str, str]]:
    """`metric{k=v,k2=v2}` into the metric and its labels (no labels: an empty dict)."""
    if "{" not in series or not series.endswith("}"):
        return series, {}
    metric, _, rest = series.partition("{")
    pairs = (item.partition("=") for item in rest[:-1].split(",") if item)
    return metric, {k: v for k, _, v in pairs}


def _clean(values: dict[Any, Any]) -> dict[Any, Any]:
    """JSON-friendly: floats rounded, NaN as None."""
    out: dict[Any, Any] = {}
    for k, v in values.items():
        if isinstance(v, float):
            out[k] = None if math.isnan(v) else round(v, 4)
        else:
            out[k] = v
    return out
