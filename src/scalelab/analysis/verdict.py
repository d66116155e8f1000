"""Is this run a valid measurement, and did it meet its SLO? (as MLPerf LoadGen says VALID/INVALID)

A run is INVALID, with every reason listed, when it did not succeed, its load
phase is shorter than `slo.min_load_duration`, the achieved rate is more than
`slo.max_rate_error` off the target, the consumer lag is still growing at the
end of the load phase (no steady state), a scraped series has a gap longer
than 2.5 scrape intervals inside the load window, nothing was processed, or
the accounting is broken. The SLO (latency p99/p95 ceilings, a minimum
throughput/target ratio) is reported separately as met or missed: a valid
run may miss its SLO, which is then a valid result that says "too slow".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalelab.analysis.dataset import Run
from scalelab.analysis.gaps import scrape_gaps
from scalelab.analysis.series import own_metrics

DEFAULT_MAX_RATE_ERROR = 0.02
GAP_FACTOR = 2.5
LAG_GROWTH_RATIO = 0.02
"""Lag growing faster than this fraction of the target rate is not a steady state..."""
LAG_RISE_MIN = 5.0
"""...when it also rose by more than this many messages over the last third of the load."""


@dataclass
class Verdict:
    valid: bool
    reasons: list[str] = field(default_factory=list)
    slo: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "VALID" if self.valid else "INVALID"

    @property
    def slo_met(self) -> bool | None:
        """True or False when the spec sets an SLO, None when it sets none."""
        return all(entry["met"] for entry in self.slo.values()) if self.slo else None

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, **asdict(self), "slo_met": self.slo_met}


def verdict(run_dir: Path | Run) -> Verdict:
    """Check a run directory (or an opened Run) and say VALID or INVALID, and why."""
    run = run_dir if isinstance(run_dir, Run) else Run(Path(run_dir))
    reasons: list[str] = []
    notes: list[str] = list(run.notes)
    reasons += check_status(run)
    if not run.summary:
        reasons.append("no summary.json: the run left no headline figures")
    else:
        reasons += check_processed(run) + check_rate(run) + check_accounting(run, notes)
        reasons += check_lag_steady(run, notes)
    reasons += check_load_duration(run)
    reasons += check_scrape_gaps(run, notes)
    return Verdict(not reasons, reasons, slo_results(run), notes)


def slo_settings(run: Run) -> dict[str, Any]:
    return dict(run.spec.get("slo") or {})


def check_status(run: Run) -> list[str]:
    status = run.record.get("status", "unknown")
    if status == "succeeded":
        return []
    errors = run.record.get("errors") or []
    first = f": {_gist(errors[0].get('message', ''))}" if errors else ""
    return [f"run status is {status}{first}"]


def _gist(message: str) -> str:
    """One line of an error: the last line of a traceback, else the first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def check_load_duration(run: Run) -> list[str]:
    window = run.load_window
    if window is None:
        return ["no finished load phase in run.json"]
    seconds = (window[1] - window[0]) / 1e9
    minimum = float(slo_settings(run).get("min_load_duration") or 0)
    if seconds < minimum:
        return [
            f"load phase lasted {seconds:.1f} s, shorter than slo.min_load_duration {minimum:g} s"
        ]
    return []


def check_processed(run: Run) -> list[str]:
    if not run.summary.get("processed_in_load"):
        return ["no message was processed in the load phase"]
    return []


def check_rate(run: Run) -> list[str]:
    rate = run.summary.get("rate") or {}
    target, achieved = rate.get("target_rate"), rate.get("achieved_rate")
    if not target or achieved is None:
        return ["no target or achieved rate in summary.json"]
    limit = float(slo_settings(run).get("max_rate_error", DEFAULT_MAX_RATE_ERROR))
    error = abs(achieved - target) / target
    if error > limit:
        return [
            f"achieved rate {achieved:.2f} msg/s is {error:.1%} off the target "
            f"{target:.2f} msg/s (slo.max_rate_error {limit:.1%})"
        ]
    return []


def check_accounting(run: Run, notes: list[str]) -> list[str]:
    accounting = run.summary.get("accounting")
    if not accounting:
        return ["no accounting in summary.json"]
    if accounting.get("duplicates"):
        notes.append(f"{accounting['duplicates']} duplicate deliveries (at-least-once)")
    if not accounting.get("ok", False) or accounting.get("lost"):
        return [
            f"accounting broken: {accounting.get('lost')} of {accounting.get('produced')} "
            f"messages lost"
        ]
    return []


def check_lag_steady(run: Run, notes: list[str]) -> list[str]:
    """Fit a line to the lag over the last third of the load phase's samples."""
    t, lag = load_lag_samples(run)
    if t.size < 3:
        notes.append(f"{t.size} consumer-lag samples in the load phase: steady state not checked")
        return []
    tail = slice(t.size - max(3, t.size // 3), None)
    slope = float(np.polyfit(t[tail], lag[tail], 1)[0]) if np.ptp(t[tail]) > 0 else 0.0
    rise = slope * float(np.ptp(t[tail]))
    target = float((run.summary.get("rate") or {}).get("target_rate") or 0)
    if slope > LAG_GROWTH_RATIO * target and rise > LAG_RISE_MIN:
        return [
            f"consumer lag still growing at the end of the load phase "
            f"(+{slope:.2f} msg/s over its last third, {lag[tail][0]:.0f} → "
            f"{lag[-1]:.0f}): not a steady state"
        ]
    return []


def load_lag_samples(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Consumer-lag samples inside the load phase: (seconds since traffic started, lag)."""
    samples = run.summary.get("consumer_lag") or []
    window, origin = run.load_window, run.origin_ns
    if not samples or window is None or origin is None:
        return np.array([]), np.array([])
    t = np.array([float(s["t"]) for s in samples])
    lag = np.array([float(s["lag"]) for s in samples])
    inside = (t >= (window[0] - origin) / 1e9) & (t <= (window[1] - origin) / 1e9)
    return t[inside], lag[inside]


def check_scrape_gaps(run: Run, notes: list[str]) -> list[str]:
    window = run.load_window
    if window is None:
        return []
    if run.metrics.empty:
        notes.append("no metrics.parquet: scrape gaps not checked")
        return []
    limit = GAP_FACTOR * run.scrape_interval
    gaps = scrape_gaps(own_metrics(run), window, limit)
    if gaps.empty:
        return []
    worst = gaps.iloc[0]
    return [
        f"scrape gaps in the load window: {len(gaps)} series with a gap over "
        f"{limit:g} s ({GAP_FACTOR:g} × the {run.scrape_interval:g} s scrape interval), "
        f"longest {worst['gap_s']:.1f} s in {worst['series']}"
    ]


def slo_results(run: Run) -> dict[str, dict[str, Any]]:
    slo, summary = slo_settings(run), run.summary
    latency = summary.get("latency_s") or {}
    out = {}
    for key, stat in (("latency_p99", "p99"), ("latency_p95", "p95")):
        if slo.get(key) is not None:
            out[key] = _entry(float(slo[key]), latency.get(stat), ceiling=True)
    if slo.get("min_throughput_ratio") is not None:
        target = (summary.get("rate") or {}).get("target_rate")
        throughput = summary.get("throughput")
        ratio = round(throughput / target, 4) if target and throughput is not None else None
        out["min_throughput_ratio"] = _entry(
            float(slo["min_throughput_ratio"]), ratio, ceiling=False
        )
    return out


def _entry(target: float, measured: float | None, ceiling: bool) -> dict[str, Any]:
    """Met when measured (not missing) is within the target; ceilings are inclusive."""
    met = measured is not None and (measured <= target if ceiling else measured >= target)
    return {"target": target, "measured": measured, "met": bool(met)}
