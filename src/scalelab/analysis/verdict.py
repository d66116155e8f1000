"""Is this run a valid measurement, and did it meet its SLO? (as MLPerf LoadGen says VALID/INVALID)

A run is INVALID, with every reason listed, when it did not succeed, its load
phase is shorter than `slo.min_load_duration` (default 30 s), fewer than
`slo.min_samples` (default 100) messages of the load phase completed (too few
for a p99 claim, as MLPerf LoadGen's minimum query count), some message of
the load phase never completed (survivorship: its latency is unknown, so the
percentiles would be a lower bound), a step of a step/ramp/diurnal load was
saturated (completed clearly less than offered), the achieved rate is more
than `slo.max_rate_error` off the target, the consumer lag is still growing
at the end of the load phase (no steady state), more than
`slo.max_foreign_cpu` (default 0.5) of the host's busy CPU was not the run's
own (above 0.10 a note), a scraped series has a gap longer than 2.5 scrape
intervals inside the load window, nothing was processed, or the accounting
is broken. The SLO (latency p99/p95 ceilings, a minimum completed/target
throughput ratio) is reported separately as met or missed, each with its
unit: a valid run may miss its SLO, which is then a valid result that says
"too slow".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.analysis.dataset import Run
from scalelab.analysis.gaps import scrape_gaps
from scalelab.analysis.host_cpu import SAMPLED_BASIS, foreign_cpu
from scalelab.analysis.series import own_metrics
from scalelab.export.gaps import GAP_FACTOR

DEFAULT_MAX_RATE_ERROR = 0.02
DEFAULT_MIN_SAMPLES = 100
DEFAULT_MIN_LOAD_DURATION = 30.0
DEFAULT_MAX_FOREIGN_CPU = 0.5
FOREIGN_CPU_NOTE = 0.10
"""Above this share of the host's busy CPU not used by the run, the verdict notes it."""

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
        reasons += check_processed(run) + check_min_samples(run) + check_completion(run, notes)
        reasons += check_saturated_steps(run) + check_rate(run) + check_accounting(run, notes)
        reasons += check_lag_steady(run, notes) + check_foreign_cpu(run, notes)
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
    minimum = _setting(run, "min_load_duration", DEFAULT_MIN_LOAD_DURATION)
    if seconds < minimum:
        return [
            f"load phase lasted {seconds:.1f} s, shorter than slo.min_load_duration {minimum:g} s"
        ]
    return []


def check_processed(run: Run) -> list[str]:
    if not run.summary.get("processed_in_load"):
        return ["no message was processed in the load phase"]
    return []


def _setting(run: Run, key: str, default: float) -> float:
    """An slo setting of the resolved spec; the default when the spec predates it."""
    value = slo_settings(run).get(key)
    return default if value is None else float(value)


def check_min_samples(run: Run) -> list[str]:
    """Enough completed messages in the load phase to claim a p99 (MLPerf's min query count)."""
    samples = int(run.summary.get("processed_in_load") or 0)
    minimum = int(_setting(run, "min_samples", DEFAULT_MIN_SAMPLES))
    if 0 < samples < minimum:
        return [
            f"only {samples} messages of the load phase completed, fewer than "
            f"slo.min_samples {minimum} needed for a latency-percentile claim"
        ]
    return []


def check_completion(run: Run, notes: list[str]) -> list[str]:
    """Messages of the load phase that never completed count (no survivorship bias)."""
    completion = run.summary.get("completion") or {}
    missing = completion.get("not_completed")
    duplicates = run.summary.get("duplicates") or {}
    if duplicates.get("records"):
        notes.append(
            f"{duplicates['records']} duplicate records of {duplicates.get('messages')} messages "
            "left out of the headline figures (each message counts at its first completion)"
        )
    if missing is None:
        notes.append(
            "which messages of the load phase never completed is unknown "
            f"({completion.get('basis', 'no completion figures in summary.json')})"
        )
        return []
    if missing > 0:
        return [
            f"not completed: {missing} of {completion.get('load_messages')} messages of the "
            "load phase never completed (nor were dead-lettered); their latency is unknown, "
            "so the percentiles would only be a lower bound"
        ]
    return []


def check_saturated_steps(run: Run) -> list[str]:
    """Steps that completed clearly fewer messages than they were offered."""
    steps = [s for s in run.summary.get("steps") or [] if s.get("saturated")]
    if not steps:
        return []
    shown = ", ".join(
        f"step {s['step']} (offered {_rate(s.get('offered_rate'))}, completed "
        f"{_rate(s.get('completed_rate'))})"
        for s in steps
    )
    return [f"saturated: {shown}: the system did not keep up with the offered load"]


def _rate(value: Any) -> str:
    return "–" if value is None else f"{float(value):.2f} msg/s"


def check_foreign_cpu(run: Run, notes: list[str]) -> list[str]:
    """Busy CPU on the host not used by the run: a note above 10 %, INVALID past the limit."""
    host = foreign_cpu(run)
    if host is None or host.get("foreign_share") is None:
        return []
    share, limit = (
        float(host["foreign_share"]),
        _setting(run, "max_foreign_cpu", DEFAULT_MAX_FOREIGN_CPU),
    )
    text = (
        f"{share:.1%} of the host's busy CPU during load ({host['busy_seconds']:.1f} CPU-s) "
        f"was not used by the run's own processes"
    )
    if share > limit and host.get("basis") == SAMPLED_BASIS:
        return [f"noisy neighbours: {text} (slo.max_foreign_cpu {limit:.0%})"]
    if share > FOREIGN_CPU_NOTE:
        notes.append(f"noisy neighbours: {text} ({host.get('basis')})")
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
    if accounting.get("duplicates") and "duplicates" not in run.summary:  # else noted there
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
    gaps = scrape_gaps(_steady_series(own_metrics(run)), window, limit)
    if gaps.empty:
        return []
    worst = gaps.iloc[0]
    return [
        f"scrape gaps in the load window: {len(gaps)} series with a gap over "
        f"{limit:g} s ({GAP_FACTOR:g} × the {run.scrape_interval:g} s scrape interval), "
        f"longest {worst['gap_s']:.1f} s in {worst['series']}"
    ]


# Flink registers a job's and its tasks' metrics anew at every (re)start: a rescale or a
# failover leaves a hole in those series that is the restart, not a missed scrape.
RESTARTED_SERIES = ("flink_taskmanager_job_", "flink_jobmanager_job_")


def _steady_series(metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics.empty or "metric" not in metrics:
        return metrics
    return metrics[~metrics["metric"].str.startswith(RESTARTED_SERIES)]


def slo_results(run: Run) -> dict[str, dict[str, Any]]:
    slo, summary = slo_settings(run), run.summary
    latency = summary.get("latency_s") or {}
    out = {}
    for key, stat in (("latency_p99", "p99"), ("latency_p95", "p95")):
        if slo.get(key) is not None:
            out[key] = _entry(float(slo[key]), latency.get(stat), ceiling=True, unit="s")
    if slo.get("min_throughput_ratio") is not None:
        target = (summary.get("rate") or {}).get("target_rate")
        # before the basis was recorded, "throughput" counted sends, not completions
        throughput = summary.get("throughput") if summary.get("throughput_basis") else None
        ratio = round(throughput / target, 4) if target and throughput is not None else None
        out["min_throughput_ratio"] = _entry(
            float(slo["min_throughput_ratio"]), ratio, ceiling=False, unit="ratio"
        )
    return out


def _entry(target: float, measured: float | None, ceiling: bool, unit: str) -> dict[str, Any]:
    """Met when measured (not missing) is within the target; ceilings are inclusive.

    `unit` is "s" (seconds) or "ratio" (completed throughput / target rate).
    """
    met = measured is not None and (measured <= target if ceiling else measured >= target)
    return {"target": target, "measured": measured, "met": bool(met), "unit": unit}
