"""The autoscaler's figures for summary.json: replica-seconds, rescales, reaction times."""

from __future__ import annotations

from scalelab.autoscale.decisions import Decision


def replica_seconds(timeline: list[tuple[float, int]]) -> float:
    """∫ replicas dt over the autoscaler's life, from its (elapsed, replicas) steps."""
    total = 0.0
    for (t0, n), (t1, _) in zip(timeline, timeline[1:], strict=False):
        total += n * max(0.0, t1 - t0)
    return total


def autoscale_summary(
    policy: str, decisions: list[Decision], timeline: list[tuple[float, int]]
) -> dict[str, object]:
    rescales = [d for d in decisions if d.rescale]
    durations = [
        (d.completed_ns - d.requested_ns) / 1e9
        for d in rescales
        if d.completed_ns is not None and d.requested_ns is not None
    ]
    return {
        "policy": policy,
        "decisions": len(decisions),
        "rescales": len(rescales),
        "scale_ups": sum(d.action == "scale-up" for d in rescales),
        "scale_downs": sum(d.action == "scale-down" for d in rescales),
        "replica_seconds": round(replica_seconds(timeline), 3),
        "max_replicas": max((n for _, n in timeline), default=0),
        "rescale_seconds": [round(s, 3) for s in durations],
        "reaction_s": reaction_seconds(decisions),
        "first_scale_up_s": next((d.elapsed_s for d in rescales if d.action == "scale-up"), None),
        "timeline": [{"t": round(t, 3), "replicas": n} for t, n in timeline],
    }


def reaction_seconds(decisions: list[Decision]) -> list[float]:
    """Per completed scale-up: from the first decision that wanted more replicas than
    were running (held or not) to the rescale's completion. A wish that lapses before
    it is acted on (one held at the start, then no longer wanted) starts nothing."""
    out: list[float] = []
    first_want: int | None = None
    for d in decisions:
        if d.target <= d.current:
            first_want = None
        elif first_want is None:
            first_want = d.time_ns
        if d.action == "scale-up" and d.completed_ns is not None and first_want is not None:
            out.append(round((d.completed_ns - first_want) / 1e9, 3))
        if d.rescale:
            first_want = None
    return out


def run_figures(
    scaler: dict[str, object], slo_violation_s: float, duplicates: int
) -> dict[str, object]:
    """The summary.json block `autoscaler`: the autoscaler's own figures plus the run's
    SLO-violation seconds and the duplicates per rescale (at-least-once redelivery)."""
    rescales = int(scaler.get("rescales", 0))  # type: ignore[call-overload]
    return {
        **scaler,
        "slo_violation_s": slo_violation_s,
        "duplicates_per_rescale": round(duplicates / rescales, 3) if rescales else None,
    }
