"""Per-step figures of a multi-segment load (step, ramp, diurnal): one average hides the knee.

The segments come from the spec's `load:` section, the same profile the
producer followed (`scalelab.load.profiles`); times are seconds since traffic
started (the producer's `start_ns`), so a step's boundaries are the spec's.
Only the part of each segment inside the load window counts (warmup excluded).

For each segment: the offered rate (messages the schedule intended in it),
the completed rate (first completions by `done_ns` in it), latency
percentiles of the messages offered in it, and the consumer lag at its end.
A segment is *saturated* when it completed clearly fewer messages than it
was offered: more than `SATURATION_TOLERANCE` short, and by at least
`SATURATION_MIN_MESSAGES`, so the latency shift at a boundary is no knee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from scalelab.analysis.completion import Qos
from scalelab.errors import ScalelabError
from scalelab.load.config import LoadSpec
from scalelab.load.profile_base import PiecewiseProfile, RateProfile
from scalelab.load.profiles import expected_messages, make_profile, send_times

SATURATION_TOLERANCE = 0.05
SATURATION_MIN_MESSAGES = 5
MAX_SEGMENTS = 48
"""More pieces than this (a fine diurnal curve) are merged into this many segments."""
RAMP_SEGMENT_S = 10.0
SNAP_S = 0.005
"""run.json keeps phase times to the millisecond: a load window within this of the spec's
warmup or duration starts or ends there."""
MAX_SCHEDULE = 20_000_000
"""Schedules longer than this are not rebuilt (offered counts then come from the rates)."""


@dataclass(frozen=True)
class Segment:
    label: str
    start_s: float
    end_s: float
    nominal_rate: float | None
    """The spec's rate for the segment (mean over it), in the profile's unit."""


@dataclass(frozen=True)
class LoadPlan:
    """What the spec's load section says: its segments and, where rebuilt, its schedule."""

    warmup: float
    duration: float
    segments: list[Segment]
    offsets: np.ndarray | None
    """Intended send offsets (seconds since start) of every message, in sequence order."""

    def load_seq_range(self) -> tuple[int, int] | None:
        """Sequence numbers whose intended offset lies in [warmup, duration)."""
        if self.offsets is None:
            return None
        start = int(np.searchsorted(self.offsets, self.warmup, side="left"))
        end = int(np.searchsorted(self.offsets, self.duration, side="left"))
        return start, end


def load_plan(spec: dict[str, Any], mean_frame_bytes: float | None = None) -> LoadPlan | None:
    """The plan of a resolved spec's `load:` section; None if it cannot be rebuilt here."""
    try:
        load = TypeAdapter(LoadSpec).validate_python(spec.get("load") or {})
        profile = make_profile(load, spec.get("base_dir"))
    except (ValidationError, ScalelabError, OSError, ValueError, TypeError):
        return None
    return LoadPlan(
        load.warmup,
        load.duration,
        _segments(load, profile),
        _offsets(profile, mean_frame_bytes),
    )


def _offsets(profile: RateProfile, mean_frame_bytes: float | None) -> np.ndarray | None:
    """The whole schedule, as the producer built it; None when too long or not rebuildable."""
    try:
        if expected_messages(profile, mean_frame_bytes) > MAX_SCHEDULE:
            return None
        times = send_times(profile, mean_frame_bytes)
        return np.fromiter(times, dtype=np.float64, count=-1)
    except (ScalelabError, ValueError, OSError):
        return None


def _segments(load: Any, profile: RateProfile) -> list[Segment]:
    """Step: the spec's steps; diurnal: its pieces; ramp: ~10 s slices; else none."""
    if not isinstance(profile, PiecewiseProfile) or load.profile not in (
        "step",
        "ramp",
        "diurnal",
    ):
        return []
    pieces = profile.pieces
    if load.profile == "ramp":
        count = min(MAX_SEGMENTS, max(2, round((load.duration - load.warmup) / RAMP_SEGMENT_S)))
        edges = np.linspace(load.warmup, load.duration, count + 1)
        return [
            Segment(f"{i + 1}", float(a), float(b), _mean_rate(pieces, a, b))
            for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True))
        ]
    edges, rates = pieces.edges, pieces.left
    if len(rates) > MAX_SEGMENTS:
        picks = np.linspace(0, len(rates), MAX_SEGMENTS + 1).round().astype(int)
        edges = edges[picks]
        rates = np.array(
            [_mean_rate(pieces, a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        )
    return [
        Segment(f"{i + 1}", float(a), float(b), float(r))
        for i, (a, b, r) in enumerate(zip(edges[:-1], edges[1:], rates, strict=True))
    ]


def _mean_rate(pieces: Any, start: float, end: float) -> float:
    grid = np.linspace(start, end, 65)
    return float(np.mean([pieces.rate_at(float(t)) for t in grid]))


def step_table(
    plan: LoadPlan,
    qos: Qos,
    origin_ns: int,
    window: tuple[int, int],
    lag: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per segment inside the load window (`qos` holds first completions only)."""
    lo, hi = (window[0] - origin_ns) / 1e9, (window[1] - origin_ns) / 1e9
    lo = plan.warmup if abs(lo - plan.warmup) < SNAP_S else lo
    hi = plan.duration if abs(hi - plan.duration) < SNAP_S else hi
    rows = []
    last = len(plan.segments) - 1
    for index, segment in enumerate(plan.segments):
        start = max(segment.start_s, lo)
        end = hi if index == last else min(segment.end_s, hi)
        if end - start <= 1e-9:
            continue
        rows.append(_row(plan, segment, start, end, qos, origin_ns, lag))
    return rows


def _row(
    plan: LoadPlan,
    segment: Segment,
    start: float,
    end: float,
    qos: Qos,
    origin_ns: int,
    lag: list[dict[str, Any]],
) -> dict[str, Any]:
    seconds = end - start
    a_ns, b_ns = origin_ns + int(start * 1e9), origin_ns + int(end * 1e9)
    offered = _offered(plan, segment, start, end)
    completed, served, latency = 0, 0, np.array([])
    if qos:
        done, intended = qos["done_ns"], qos["intended_ns"]
        completed = int(((done >= a_ns) & (done < b_ns)).sum())
        latency = qos["latency_s"][(intended >= a_ns) & (intended < b_ns)]
        served = _served(done, a_ns, b_ns, latency)
    offered_rate = offered / seconds if offered is not None else None
    return {
        "step": segment.label,
        "start_s": round(start, 3),
        "end_s": round(end, 3),
        "seconds": round(seconds, 3),
        "offered": offered,
        "offered_rate": _round(offered_rate),
        "completed": completed,
        "completed_rate": round(completed / seconds, 3),
        "latency_s": _percentiles(latency),
        "lag_end": lag_at(lag, end),
        "saturated": saturated(offered, served),
    }


def _served(done: np.ndarray, a_ns: int, b_ns: int, latency: np.ndarray) -> int:
    """Completions in the step's window shifted by its median latency.

    Completions trail sends by the latency, so right after a step up the
    unshifted window comes up short by (rate increase × latency) even when no
    queue builds; a saturated step stays short however far the window moves.
    """
    shift = int(float(np.median(latency)) * 1e9) if latency.size else 0
    return int(((done >= a_ns + shift) & (done < b_ns + shift)).sum())


def _offered(plan: LoadPlan, segment: Segment, start: float, end: float) -> int | None:
    """Messages the schedule intended in [start, end) (rate × seconds without a schedule)."""
    if plan.offsets is not None:
        lo, hi = np.searchsorted(plan.offsets, [start, end], side="left")
        return int(hi - lo)
    if segment.nominal_rate is None:
        return None
    return math.floor(segment.nominal_rate * (end - start) + 1e-9)


def saturated(offered: int | None, completed: int) -> bool:
    """Completed clearly fewer than offered: the system could not keep up in this step."""
    if not offered:
        return False
    short = offered - completed
    return short >= SATURATION_MIN_MESSAGES and short > SATURATION_TOLERANCE * offered


def lag_at(samples: list[dict[str, Any]], t: float) -> int | None:
    """The last consumer-lag sample at or before `t` seconds since traffic started."""
    before = [s for s in samples if float(s["t"]) <= t + 1e-9]
    return int(before[-1]["lag"]) if before else None


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"p50": None, "p95": None, "p99": None}
    return {f"p{p}": float(np.percentile(values, p)) for p in (50, 95, 99)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
