"""The autoscaler scorecard: runs that differ only in the policy, on the same load, ranked.

Per run: SLO-violation seconds (seconds of the load phase, 1 s bins from its start by
intended send time, whose latency percentile is above the ceiling the spec's SLO names:
p95 for `slo.latency_p95`, p99 for `slo.latency_p99`, and with both a second is violated
when either is above its limit; without a latency SLO, p95 against a default 1 s),
replica-seconds (the autoscaler's timeline, or a fixed scale × the load phase), energy
(summary.json), rescales, time to react (first scale-up after the load started) and the
frames processed. Warmup and drain are never judged; a run without a finished load phase
in run.json has no SLO-violation figure and ranks last. Ranked by SLO violation, then
replica-seconds, then energy: meet the SLO first, then with the least.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from scalelab.analysis.dataset import Run, Window, read_json

DEFAULT_CEILING_S = 1.0  # p95, when the spec sets no latency SLO
PERCENTILES = {"p95": 0.95, "p99": 0.99}
"""The latency percentiles an SLO can name (`slo.latency_p95`, `slo.latency_p99`)."""
COLUMNS = (
    ("rank", "rank"),
    ("policy", "policy"),
    ("run", "run"),
    ("SLO-violation s", "slo_violation_s"),
    ("replica-s", "replica_seconds"),
    ("energy J", "energy_j"),
    ("rescales", "rescales"),
    ("first scale-up s", "first_scale_up_s"),
    ("reaction s", "reaction_s"),
    ("processed", "processed"),
)
"""The scorecard's columns in the order shown: heading, Score field."""


@dataclass(frozen=True, order=True)
class Ceiling:
    """A latency limit each second of the load phase must keep at one percentile."""

    percentile: str  # a key of PERCENTILES
    limit_s: float
    default: bool = False  # the spec sets no latency SLO: DEFAULT_CEILING_S on p95

    @property
    def quantile(self) -> float:
        return PERCENTILES[self.percentile]

    def label(self, value: str) -> str:
        """`SLO p99 ceiling 500 ms`, or `default p95 ceiling 1 s (no latency SLO)`."""
        if self.default:
            return f"default {self.percentile} ceiling {value} (no latency SLO)"
        return f"SLO {self.percentile} ceiling {value}"


@dataclass
class Score:
    run: str
    policy: str
    load_key: str  # hash of the spec's load and source: equal keys, same trace
    slo_ceilings: list[Ceiling]  # a second is violated when any is exceeded
    slo_violation_s: float | None  # None: no finished load phase to judge
    replica_seconds: float | None
    energy_j: float | None
    rescales: int
    first_scale_up_s: float | None  # since the autoscaler started (the load's start)
    reaction_s: float | None  # median over scale-ups: first decision wanting more → complete
    processed: int  # distinct messages completed (duplicates counted once)
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> list[Any]:
        """The values of COLUMNS."""
        return [getattr(self, key) for _, key in COLUMNS]


def load_key(spec: dict[str, Any]) -> str:
    trace = {"load": spec.get("load"), "source": spec.get("source")}
    return hashlib.sha256(json.dumps(trace, sort_keys=True, default=str).encode()).hexdigest()[:12]


def ceilings(spec: dict[str, Any]) -> list[Ceiling]:
    """The ceilings the spec's SLO names (p95, p99 or both), else the default p95 one."""
    slo = spec.get("slo") or {}
    named = [
        Ceiling(name, float(slo[f"latency_{name}"]))
        for name in PERCENTILES
        if isinstance(slo.get(f"latency_{name}"), int | float)
    ]
    return named or [Ceiling("p95", DEFAULT_CEILING_S, default=True)]


def violation_seconds(
    intended_ns: np.ndarray,
    latency_s: np.ndarray,
    limits: Sequence[Ceiling],
    window: Window | None = None,
) -> float:
    """Seconds of the load phase `window` (1 s bins by intended send time) in which any
    ceiling's percentile is above its limit. Without a window, every message's bins from
    the first are judged, warmup included: callers that know the phases pass the load's."""
    over: set[int] = set()
    for c in limits:
        starts, value = per_second(intended_ns, latency_s, c.quantile, window)
        over.update(starts[value > c.limit_s].tolist())
    return float(len(over))


def per_second(
    intended_ns: np.ndarray, latency_s: np.ndarray, quantile: float, window: Window | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each 1 s bin of `window` (from its start, by intended send time; without one, from
    the first message) that has messages: its start (epoch ns) and the `quantile` of its
    latencies (s). Nothing outside the window counts."""
    intended_ns, latency_s = np.asarray(intended_ns, np.int64), np.asarray(latency_s, float)
    if window is None:
        window = (
            (int(intended_ns.min()), int(intended_ns.max()) + 1) if intended_ns.size else (0, 0)
        )
    inside = (intended_ns >= window[0]) & (intended_ns < window[1])
    if not inside.any():
        return np.zeros(0, np.int64), np.zeros(0)
    bins = (intended_ns[inside] - window[0]) // 1_000_000_000
    value = pd.Series(latency_s[inside]).groupby(bins).quantile(quantile)
    return window[0] + value.index.to_numpy(np.int64) * 1_000_000_000, value.to_numpy(float)


def first_completions(run: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Intended times and latencies of each message's first completion, and how many."""
    try:
        table = pq.read_table(run / "qos.parquet", columns=["id", "intended_ns", "latency_s"])
    except (OSError, ValueError, KeyError):
        return np.zeros(0, np.int64), np.zeros(0), 0
    _, first = np.unique(table.column("id").to_numpy(zero_copy_only=False), return_index=True)
    intended = table.column("intended_ns").to_numpy(zero_copy_only=False)[first]
    return intended, table.column("latency_s").to_numpy(zero_copy_only=False)[first], first.size


def score(path: Path) -> Score:
    run = Run(path)
    spec, scaler = run.spec, read_json(path / "autoscaler.json")
    intended, latency, messages = first_completions(path)
    limits, window = ceilings(spec), run.load_window
    policy = scaler.get("policy") or (spec.get("autoscaler") or {}).get("policy") or "fixed"
    return Score(
        run=path.name,
        policy=str(policy),
        load_key=load_key(spec),
        slo_ceilings=limits,
        slo_violation_s=None
        if window is None
        else violation_seconds(intended, latency, limits, window),
        replica_seconds=_replica_seconds(spec, run.summary, scaler),
        energy_j=((run.summary.get("energy") or {}).get("load") or {}).get("joules"),
        rescales=int(scaler.get("rescales", 0)),
        first_scale_up_s=scaler.get("first_scale_up_s"),
        reaction_s=_median(scaler.get("reaction_s")),
        processed=messages,
    )


def _median(values: Any) -> float | None:
    return float(np.median(values)) if isinstance(values, list) and values else None


def _replica_seconds(
    spec: dict[str, Any], summary: dict[str, Any], scaler: dict[str, Any]
) -> float | None:
    if "replica_seconds" in scaler:
        return float(scaler["replica_seconds"])
    workers = (spec.get("workload") or {}).get("workers")
    duration = (spec.get("load") or {}).get("duration")
    if isinstance(workers, int) and isinstance(duration, int | float):
        return float(workers * duration)
    return None


def _key(s: Score) -> tuple[float, float, float]:
    inf = math.inf
    return (
        inf if s.slo_violation_s is None else s.slo_violation_s,
        inf if s.replica_seconds is None else s.replica_seconds,
        inf if s.energy_j is None else s.energy_j,
    )


@dataclass
class Scorecard:
    scores: list[Score]
    same_load: bool

    def to_dict(self) -> dict[str, Any]:
        return {"same_load": self.same_load, "scores": [s.to_dict() for s in self.scores]}


def scorecard(runs: list[Path]) -> Scorecard:
    scores = sorted((score(run) for run in runs), key=_key)
    for rank, s in enumerate(scores, 1):
        s.rank = rank
    return Scorecard(scores, len({s.load_key for s in scores}) <= 1)
