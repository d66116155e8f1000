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
import pyarrow.parquet as pq
import yaml

DEFAULT_CEILING_S = 1.0  # when the spec sets no latency SLO


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


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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
    intended_ns, latency_s = np.asarray(intended_ns), np.asarray(latency_s)
    if intended_ns.size == 0:
        return 0.0
    bins = (intended_ns - intended_ns.min()) // 1_000_000_000
    bad = 0
    for second in np.unique(bins):
        if np.percentile(latency_s[bins == second], 95) > limit:
            bad += 1
    return float(bad)


def _qos(run: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Intended times and latencies of each message's first completion, and how many."""
    try:
        table = pq.read_table(run / "qos.parquet", columns=["id", "intended_ns", "latency_s"])
    except (OSError, ValueError, KeyError):
        return np.zeros(0, np.int64), np.zeros(0), 0
    _, first = np.unique(table.column("id").to_numpy(zero_copy_only=False), return_index=True)
    intended = table.column("intended_ns").to_numpy(zero_copy_only=False)[first]
    return intended, table.column("latency_s").to_numpy(zero_copy_only=False)[first], first.size


def score(run: Path) -> Score:
    spec, summary, scaler = _spec(run), _json(run / "summary.json"), _json(run / "autoscaler.json")
    intended, latency, messages = _qos(run)
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
