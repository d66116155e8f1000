"""Did a run sustain its offered rate? The capacity search's yes/no, with every reason.

Sustained means all of: the run succeeded; its SLO is met (when it sets one);
the producer achieved the offered rate (else the offered load was never
applied); completed ≈ offered (completed throughput at least `1 − tolerance`
of the offered rate, less the window's edge: `edge_share`); the consumer lag
is not growing at the end of the load; nothing lost (accounting) and every
message of the load phase completed.
Other reasons a verdict is INVALID (a noisy neighbour, a scrape gap, too few
samples) are kept as notes: they weaken the evidence, not the load judgement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TOLERANCE = 0.05
LOAD_REASONS = ("consumer lag still growing", "achieved rate", "saturated")
CRITERIA = (
    "sustained = run succeeded, SLO met, producer achieved the offered rate, "
    "completed ≥ (1 − {tolerance:.0%}) × offered (less the window's last median latency, "
    "at most the p99 ceiling), consumer lag not growing, "
    "nothing lost and every load-phase message completed"
)


@dataclass
class Judgement:
    sustained: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def judge(run_dir: Path, tolerance: float = DEFAULT_TOLERANCE) -> Judgement:
    summary = _json(run_dir / "summary.json")
    record = _json(run_dir / "run.json")
    reasons: list[str] = []
    if record.get("status") != "succeeded":
        reasons.append(f"run {record.get('status', 'unknown')}")
    if not summary:
        return Judgement(False, [*reasons, "no summary.json"])
    verdict = summary.get("verdict") or {}
    reasons += _slo(verdict) + _served(summary, tolerance) + _lost(summary)
    load_related = [r for r in verdict.get("reasons") or [] if r.startswith(LOAD_REASONS)]
    notes = [r for r in verdict.get("reasons") or [] if r not in load_related]
    return Judgement(not reasons and not load_related, reasons + load_related, notes)


def _slo(verdict: dict[str, Any]) -> list[str]:
    missed = []
    for name, entry in (verdict.get("slo") or {}).items():
        if not entry.get("met"):
            measured, target = entry.get("measured"), entry.get("target")
            unit = entry.get("unit", "")
            missed.append(f"SLO {name} missed: {_num(measured)} {unit} > {_num(target)} {unit}")
    return missed


def _served(summary: dict[str, Any], tolerance: float) -> list[str]:
    offered = (summary.get("rate") or {}).get("target_rate")
    served = summary.get("throughput")
    if not offered or served is None:
        return ["no offered rate or throughput in summary.json"]
    needed = (1 - tolerance) * offered * (1 - edge_share(summary))
    if served < needed:
        return [f"completed {served:.2f} msg/s < {needed:.2f} needed of offered {offered:g}"]
    return []


def edge_share(summary: dict[str, Any]) -> float:
    """Share of the load window whose messages complete only after it ends.

    Throughput counts completions inside the window, so the messages of its
    last median-latency seconds finish after it: a 10 s window at 0.4 s
    latency serves 4 % less than offered even when nothing queues. The share
    is capped at the SLO's p99 ceiling (or 0 without one), so an overloaded
    run's long latency cannot excuse its missing completions.
    """
    seconds = (summary.get("window") or {}).get("seconds") or 0
    p50 = (summary.get("latency_s") or {}).get("p50") or 0
    ceiling = ((summary.get("verdict") or {}).get("slo") or {}).get("latency_p99") or {}
    allowed = min(float(p50), float(ceiling.get("target") or 0))
    return min(0.5, allowed / seconds) if seconds > 0 else 0.0


def _lost(summary: dict[str, Any]) -> list[str]:
    lost = (summary.get("accounting") or {}).get("lost")
    missing = (summary.get("completion") or {}).get("not_completed")
    out = []
    if lost:
        out.append(f"{lost} messages lost")
    if missing:
        out.append(f"{missing} load-phase messages never completed")
    return out


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def _json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}
