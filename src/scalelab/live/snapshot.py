"""What the page gets on each poll: the panels' series up to now, the run's bands, its status.

Every series is a range query ending exactly at `now`, on a grid of
`step` seconds, so a series' last point is its value at `now`: the figure
the page prints is what an instant query at `now` returns. `now` is one
scrape interval and a half-second behind the clock: a scrape that started
before it has been stored by then, so the value at `now` no longer changes.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from scalelab.live import queries
from scalelab.live.follow import RunState
from scalelab.live.prom import Prometheus, Series

MAX_POINTS = 600
SETTLE_S = 0.5


def grid(start: float, now: float, scrape_s: float) -> tuple[float, float]:
    """(first point, step): at least a scrape apart, at most MAX_POINTS, the last one at `now`."""
    span = max(0.0, now - start)
    step = max(scrape_s, 1.0, span / MAX_POINTS)
    step = round(step, 3)
    return now - int(span // step) * step, step


def snapshot(
    state: RunState | None, prom: Prometheus | None, now: float | None = None
) -> dict[str, Any]:
    if state is None:
        return {"now": time.time(), "run": None, "message": "waiting for the run to start"}
    if now is None:
        now = time.time() - state.scrape_interval_s - SETTLE_S
    now = round(now, 3)
    body: dict[str, Any] = {
        "now": now,
        "run": {"id": state.id, "dir": str(state.dir), "status": state.status},
        "prometheus": state.prometheus,
        "scrape_interval_s": state.scrape_interval_s,
        "window_s": queries.window_s(state.scrape_interval_s),
        "bands": [asdict(b) for b in state.phases + state.faults],
        "panels": [],
    }
    if prom is None:
        body["message"] = "setting up: Prometheus is not up yet"
        return body
    measured = _has_rapl(prom)
    body["energy_source"] = "measured (RAPL)" if measured else "estimate (CPU power model)"
    start, step = grid(state.started, now, state.scrape_interval_s)
    body["start"], body["step"] = start, step
    answered = False
    for panel in queries.panels(state.id, state.scrape_interval_s, measured):
        lines = []
        for query in panel.queries:
            found = prom.range(query.expr, start, now, step)
            answered = answered or found is not None
            lines += [_line(query, s, now) for s in found or []]
        body["panels"].append({"key": panel.key, "title": panel.title, "unit": panel.unit,
                               "lines": lines})  # fmt: skip
    if not answered:
        body["message"] = "Prometheus does not answer (the run has ended or is tearing down)"
    return body


def _line(query: queries.Query, series: Series, now: float) -> dict[str, Any]:
    label = series.labels.get(query.by, "?") if query.by else query.label
    last = series.points[-1] if series.points else None
    current = last[1] if last is not None and abs(last[0] - now) < 1e-3 else None
    return {
        "key": f"{query.key}:{series.labels.get(query.by, '')}" if query.by else query.key,
        "label": label,
        "expr": query.expr,
        "points": series.points,
        "current": current,
    }


def _has_rapl(prom: Prometheus) -> bool:
    found = prom.instant(queries.RAPL_PRESENT)
    return bool(found) and any(s.points and s.points[0][1] for s in found or [])
