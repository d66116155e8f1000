"""What every time chart marks, in seconds since traffic started: fault windows and events.

run.json `results.chaos` holds one window per injected fault (`chaos/schedule.py`): its
kind, `at` and `duration` (seconds since traffic started: the schedule's clock starts
with the producer), the epoch-ns `start_ns`/`end_ns` it really began and ended, and
what was done at each end. A window is a band from start to end; a fault with no end
recorded is a moment (a line). The `chaos-*` begin/end events of those faults are not
marked again; every other event (a killed worker, a rescale) is a moment at its time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from scalelab.analysis.dataset import Run
from scalelab.analysis.faults import WORKER_IN_DETAIL


@dataclass(frozen=True)
class Mark:
    label: str
    start_s: float
    end_s: float | None = None
    """None: a moment, drawn as a line."""
    detail: str = ""


def time_marks(run: Run) -> list[Mark]:
    """The fault windows, then the events they do not cover, in time order each."""
    windows = fault_windows(run)
    events = [
        event
        for event in run.record.get("events") or []
        if event.get("time") and not (windows and str(event.get("kind", "")).startswith("chaos-"))
    ]
    origin = run.origin_ns or 0
    moments = [
        Mark(
            str(e.get("kind", "event")),
            (pd.Timestamp(e["time"]).value - origin) / 1e9,
            detail=str(e.get("detail", "")),
        )
        for e in events
    ]
    return windows + moments


def fault_windows(run: Run) -> list[Mark]:
    results = run.record.get("results") or {}
    return [_mark(w, run.origin_ns) for w in results.get("chaos") or [] if isinstance(w, dict)]


def _mark(window: dict[str, Any], origin: int | None) -> Mark:
    kind = str(window.get("kind", "fault"))
    begin, end = str(window.get("begin") or ""), str(window.get("end") or "")
    worker = WORKER_IN_DETAIL.search(begin)
    start_s = _seconds(window.get("start_ns"), origin)
    return Mark(
        f"{kind} {worker.group(1)}" if worker else kind,
        float(window.get("at") or 0.0) if start_s is None else start_s,
        _seconds(window.get("end_ns"), origin),
        "; ".join(part for part in (begin, end) if part),
    )


def _seconds(epoch_ns: Any, origin: int | None) -> float | None:
    if not isinstance(epoch_ns, int) or origin is None:
        return None
    return (epoch_ns - origin) / 1e9
