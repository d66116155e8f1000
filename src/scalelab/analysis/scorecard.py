"""The autoscaler scorecard: runs that differ only in the policy, on the same load, ranked.

Per run: SLO-violation seconds (seconds of the load phase whose p95 latency, by intended
send time, is above the spec's ceiling), replica-seconds (the autoscaler's timeline, or
a fixed scale × the load phase), energy (summary.json), rescales, time to react (first
scale-up after the load started) and the frames processed. Ranked by SLO violation,
then replica-seconds, then energy: meet the SLO first, then with the least.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml

from scalelab.analysis.dataset import read_json

DEFAULT_CEILING_S = 1.0  # when the spec sets no latency SLO
COLUMNS = (
    ("rank", "rank"),
    ("policy", "policy"),
    ("run", "run"),
    ("SLO-violation s", "slo_violation_s"),
    ("replica-s", "replica_seconds"),
    ("energy J", "energy_j"),
    ("rescales", "rescales"),
    ("reaction s", "reaction_s"),
    ("processed", "processed"),
)
"""The scorecard's columns in the order shown: heading, Score field."""


@dataclass
class Score:
    run: str
    policy: str
    load_key: str  # hash of the spec's load and source: equal keys, same trace
    slo_ceiling_s: float
    slo_violation_s: float
    replica_seconds: float | None
    energy_j: float | None
    rescales: int
    reaction_s: float | None
    processed: int  # distinct messages completed (duplicates counted once)
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> list[Any]:
        """The values of COLUMNS."""
        return [getattr(self, key) for _, key in COLUMNS]


def _spec(run: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load((run / "spec.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def load_key(spec: dict[str, Any]) -> str:
    trace = {"load": spec.get("load"), "source": spec.get("source")}
    return hashlib.sha256(json.dumps(trace, sort_keys=True, default=str).encode()).hexdigest()[:12]


def ceiling(spec: dict[str, Any]) -> float:
    slo = spec.get("slo") or {}
    value = slo.get("latency_p95") or slo.get("latency_p99")
    return float(value) if isinstance(value, int | float) else DEFAULT_CEILING_S


def violation_seconds(intended_ns: np.ndarray, latency_s: np.ndarray, limit: float) -> float:
    """Seconds (1 s bins by intended send time) whose p95 latency is above `limit`."""
    _, p95 = p95_per_second(intended_ns, latency_s)
    return float(np.count_nonzero(p95 > limit))


def p95_per_second(intended_ns: np.ndarray, latency_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each 1 s bin by intended send time, from the first message, that has messages: its
    start (epoch ns) and its p95 latency (s)."""
    intended_ns, latency_s = np.asarray(intended_ns, np.int64), np.asarray(latency_s, float)
    if intended_ns.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    first = int(intended_ns.min())
    p95 = pd.Series(latency_s).groupby((intended_ns - first) // 1_000_000_000).quantile(0.95)
    return first + p95.index.to_numpy(np.int64) * 1_000_000_000, p95.to_numpy(float)


def first_completions(run: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Intended times and latencies of each message's first completion, and how many."""
    try:
        table = pq.read_table(run / "qos.parquet", columns=["id", "intended_ns", "latency_s"])
    except (OSError, ValueError, KeyError):
        return np.zeros(0, np.int64), np.zeros(0), 0
    _, first = np.unique(table.column("id").to_numpy(zero_copy_only=False), return_index=True)
    intended = table.column("intended_ns").to_numpy(zero_copy_only=False)[first]
    return intended, table.column("latency_s").to_numpy(zero_copy_only=False)[first], first.size


def score(run: Path) -> Score:
    spec, summary, scaler = (
        _spec(run),
        read_json(run / "summary.json"),
        read_json(run / "autoscaler.json"),
    )
    intended, latency, messages = first_completions(run)
    limit = ceiling(spec)
    policy = scaler.get("policy") or (spec.get("autoscaler") or {}).get("policy") or "fixed"
    return Score(
        run=run.name,
        policy=str(policy),
        load_key=load_key(spec),
        slo_ceiling_s=limit,
        slo_violation_s=violation_seconds(intended, latency, limit),
        replica_seconds=_replica_seconds(spec, summary, scaler),
        energy_j=((summary.get("energy") or {}).get("load") or {}).get("joules"),
        rescales=int(scaler.get("rescales", 0)),
        reaction_s=scaler.get("first_scale_up_s"),
        processed=messages,
    )


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
        s.slo_violation_s,
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
