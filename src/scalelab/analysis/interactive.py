"""The report's interactive charts, as Plotly figure specs (plain dicts, drawn by plotly.js).

Every time chart shares the x axis "seconds since traffic started", shows the
warmup and cooldown as bands, each fault's window as a red band (a fault with no
end, and every other event, as a dashed line), and is linked to the others:
zooming one zooms all. Every axis names its unit, and an SLO line says its value
with its unit (`SLO p99 1 s`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalelab.analysis.dataset import Run
from scalelab.analysis.fault_windows import time_marks
from scalelab.analysis.series import first_completion_rows, run_grid
from scalelab.analysis.units import seconds

PHASE_FILL = {"warmup": "rgba(158,158,158,0.22)", "cooldown": "rgba(100,181,246,0.18)"}
FAULT_FILL = "rgba(229,57,53,0.16)"
COLOURS = {
    "target rate": "#000000",
    "input rate": "#ef6c00",
    "throughput": "#1565c0",
    "latency p50": "#43a047",
    "latency p95": "#fb8c00",
    "latency p99": "#c62828",
}
CDF_POINTS = 1000
X_TITLE = "seconds since traffic started (s)"


@dataclass
class Chart:
    """One chart: a div id, a caption, Plotly traces and layout; `linked` charts share x."""

    id: str
    caption: str
    data: list[dict[str, Any]]
    layout: dict[str, Any]
    linked: bool = True
    notes: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        return {"id": self.id, "data": self.data, "layout": self.layout, "linked": self.linked}


def line(x: Any, y: Any, name: str, unit: str, **style: Any) -> dict[str, Any]:
    """A step line with a hover that names the series, the time and the value with its unit."""
    return {
        "type": "scatter",
        "mode": "lines",
        "x": floats(x),
        "y": floats(y),
        "name": name,
        "line": {
            "shape": "hv",
            "width": 1.6,
            **({"color": COLOURS[name]} if name in COLOURS else {}),
        },
        "hovertemplate": f"{name}: %{{y:.4g}} {unit}<br>t = %{{x:.1f}} s<extra></extra>",
        **style,
    }


def time_layout(
    title: str, y_title: str, run: Run, extra_shapes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    shapes, annotations = phase_shapes(run)
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "xaxis": {"title": {"text": X_TITLE}, "zeroline": False},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "height": 300,
        "margin": {"l": 70, "r": 170, "t": 40, "b": 45},
        "hovermode": "x unified",
        "legend": {"x": 1.01, "y": 1, "font": {"size": 10}},
        "shapes": shapes + (extra_shapes or []),
        "annotations": annotations,
    }


def phase_shapes(run: Run) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Warmup and cooldown bands, a red band over each fault's window and a dashed line at
    each other event (a fault with no end recorded, a killed worker), each labelled."""
    origin = run.origin_ns or 0
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for name, (start, end) in run.phases.items():
        if name in PHASE_FILL:
            x0, x1 = (start - origin) / 1e9, (end - origin) / 1e9
            shapes.append(_band(x0, x1, PHASE_FILL[name]))
            annotations.append(_label((x0 + x1) / 2, name, "#627d98"))
    for mark in time_marks(run):
        if mark.end_s is None:
            shapes.append(_event_line(mark.start_s))
            middle = mark.start_s
        else:
            shapes.append(_band(mark.start_s, mark.end_s, FAULT_FILL, name=mark.label))
            middle = (mark.start_s + mark.end_s) / 2
        label = _label(middle, mark.label, "#c62828")
        annotations.append({**label, "hovertext": mark.detail} if mark.detail else label)
    return shapes, annotations


def slo_trace(value_s: float, name: str, start: float, end: float) -> dict[str, Any]:
    """A dotted SLO line at `value_s` (drawn in ms), named with its value and unit."""
    label = f"SLO {name} {seconds(value_s)}"
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [float(start), float(end)],
        "y": [value_s * 1000, value_s * 1000],
        "name": label,
        "line": {"color": "#6a1b9a", "dash": "dot", "width": 1.5},
        "hovertemplate": f"{label}<extra></extra>",
    }


def time_charts(run: Run, series: pd.DataFrame, estimate: bool) -> list[Chart]:
    """The linked charts over time that have data."""
    if series.empty:
        return []
    t = series.index.to_numpy()
    charts = [
        _chart(
            run,
            "chart-rates",
            "Offered, sent and completed rate",
            "rate (msg/s)",
            [
                line(
                    t,
                    series[c],
                    c,
                    "msg/s",
                    **(
                        {"line": {"dash": "dash", "color": "#000", "shape": "hv"}}
                        if c == "target rate"
                        else {}
                    ),
                )
                for c in ("target rate", "input rate", "throughput")
                if _has(series, c)
            ],
            "Target rate (the producer's schedule), rate sent, frames completed per second.",
        ),
        _latency_chart(run, series),
        _chart(
            run,
            "chart-lag",
            "Consumer lag",
            "messages not yet consumed (messages)",
            [line(t, series["consumer lag"], "consumer lag", "messages")]
            if _has(series, "consumer lag")
            else [],
            "Messages in the input topic not yet consumed.",
        ),
        _worker_chart(run),
        _cpu_chart(run, series),
        *_energy_charts(run, series, estimate),
    ]
    return [c for c in charts if c is not None and c.data]


def distribution_charts(qos: pd.DataFrame, slo: dict[str, Any]) -> list[Chart]:
    """Latency CDF and histogram of the load phase's messages (each message once)."""
    if qos.empty:
        return []
    ms = np.sort(qos["latency_s"].to_numpy(dtype=float) * 1000)
    ms = ms[np.isfinite(ms)]
    if not ms.size:
        return []
    probs = np.linspace(0, 1, min(CDF_POINTS, ms.size))
    values = np.quantile(ms, probs)
    lines = [
        _vline(slo[k] * 1000, f"SLO {k[8:]} {seconds(slo[k])}")
        for k in ("latency_p95", "latency_p99")
        if slo.get(k)
    ]
    cdf = Chart(
        "chart-cdf",
        "Share of the load phase's messages completed within a latency.",
        [
            {
                "type": "scatter",
                "mode": "lines",
                "x": floats(values),
                "y": floats(probs * 100),
                "name": "CDF",
                "line": {"color": "#1565c0"},
                "hovertemplate": "%{y:.1f} % within %{x:.1f} ms<extra></extra>",
            }
        ],
        {
            **_plain_layout(
                "Latency CDF (load phase)", "latency from intended send time (ms)", "messages (%)"
            ),
            "shapes": lines,
            "xaxis": {"title": {"text": "latency from intended send time (ms)"}, "type": "log"},
        },
        linked=False,
    )
    counts, edges = np.histogram(ms, bins=min(60, max(10, ms.size // 20)))
    histogram = Chart(
        "chart-histogram",
        "How many messages took each latency (load phase).",
        [
            {
                "type": "bar",
                "x": floats((edges[:-1] + edges[1:]) / 2),
                "y": floats(counts),
                "name": "messages",
                "marker": {"color": "#5c6bc0"},
                "width": float(edges[1] - edges[0]),
                "hovertemplate": "%{y} messages at %{x:.1f} ms<extra></extra>",
            }
        ],
        {
            **_plain_layout(
                "Latency histogram (load phase)",
                "latency from intended send time (ms)",
                "count (messages)",
            ),
            "shapes": lines,
            "bargap": 0.02,
        },
        linked=False,
    )
    return [cdf, histogram]


def _latency_chart(run: Run, series: pd.DataFrame) -> Chart | None:
    t = series.index.to_numpy()
    traces = [
        line(t, series[c] * 1000, c, "ms")
        for c in ("latency p50", "latency p95", "latency p99")
        if _has(series, c)
    ]
    slo = run.spec.get("slo") or {}
    if traces and len(t):
        traces += [
            slo_trace(slo[k], k[8:], t[0], t[-1])
            for k in ("latency_p95", "latency_p99")
            if slo.get(k)
        ]
    return _chart(
        run,
        "chart-latency",
        "End-to-end latency from intended send time",
        "latency (ms)",
        traces,
        "Latency percentiles per step, by completion time; dotted: the SLO.",
    )


def _worker_chart(run: Run) -> Chart | None:
    grid = run_grid(run)
    qos = first_completion_rows(run.qos)
    if grid is None or qos.empty or "worker" not in qos:
        return None
    traces = []
    for worker, rows in sorted(qos.groupby("worker", observed=True), key=lambda p: str(p[0])):
        bins = grid.bin_of(rows["done_ns"].to_numpy(dtype=np.int64))
        counts = np.bincount(bins[bins >= 0], minlength=grid.n)[: grid.n] / grid.step_s
        traces.append(line(grid.seconds, counts, str(worker), "frames/s"))
    return _chart(
        run,
        "chart-workers",
        "Throughput per worker",
        "frames completed (frames/s)",
        traces,
        "Frames each worker completed per second (each message counted once).",
    )


def _cpu_chart(run: Run, series: pd.DataFrame) -> Chart | None:
    t = series.index.to_numpy()
    parts = [c for c in series.columns if c.startswith("cpu ") and _has(series, c)]
    traces = [line(t, series[c].fillna(0), c[4:], "cores", stackgroup="cpu") for c in parts]
    if _has(series, "host cpu busy"):
        traces.append(
            line(
                t,
                series["host cpu busy"],
                "host busy (all processes)",
                "cores",
                line={"color": "#000", "width": 1.2, "shape": "hv"},
            )
        )
    return _chart(
        run,
        "chart-cpu",
        "CPU per component",
        "CPU (cores)",
        traces,
        "Cores used by each component, stacked; the black line is the whole host.",
    )


def _energy_charts(run: Run, series: pd.DataFrame, estimate: bool) -> list[Chart | None]:
    if not _has(series, "power"):
        return []
    t = series.index.to_numpy()
    tag = "ESTIMATE from CPU time" if estimate else "measured"
    power = _chart(
        run,
        "chart-power",
        f"Power ({tag})",
        "power (W)",
        [line(t, series["power"], "power", "W", line={"color": "#6d4c41", "shape": "hv"})],
        f"Host power over time ({tag}).",
    )
    if not _has(series, "throughput"):
        return [power]
    done = series["throughput"].to_numpy(dtype=float)
    per_frame = np.where(
        done > 0, series["power"].to_numpy(dtype=float) / np.where(done > 0, done, 1), np.nan
    )
    energy = _chart(
        run,
        "chart-energy",
        f"Energy per frame ({tag})",
        "energy per frame (J/frame)",
        [
            line(
                t,
                per_frame,
                "energy per frame",
                "J/frame",
                line={"color": "#8e24aa", "shape": "hv"},
            )
        ],
        "Host power divided by frames completed in each step (host-wide).",
    )
    return [power, energy]


def _chart(
    run: Run,
    chart_id: str,
    title: str,
    y_title: str,
    traces: list[dict[str, Any]],
    caption: str,
    shapes: list[dict[str, Any]] | None = None,
) -> Chart | None:
    if not traces:
        return None
    return Chart(chart_id, caption, traces, time_layout(title, y_title, run, shapes))


def _plain_layout(title: str, x_title: str, y_title: str) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "height": 320,
        "margin": {"l": 70, "r": 20, "t": 40, "b": 45},
        "showlegend": False,
    }


def _vline(x: float, text: str) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": "#6a1b9a", "dash": "dot", "width": 1.5},
        "label": {"text": text, "textposition": "end", "font": {"color": "#6a1b9a", "size": 11}},
    }


def _band(x0: float, x1: float, colour: str, name: str = "") -> dict[str, Any]:
    return {
        "type": "rect",
        **({"name": name} if name else {}),
        "xref": "x",
        "yref": "paper",
        "x0": x0,
        "x1": x1,
        "y0": 0,
        "y1": 1,
        "fillcolor": colour,
        "line": {"width": 0},
        "layer": "below",
    }


def _event_line(at: float) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": at,
        "x1": at,
        "y0": 0,
        "y1": 1,
        "line": {"color": "#c62828", "dash": "dash", "width": 1},
    }


def _label(x: float, text: str, colour: str) -> dict[str, Any]:
    return {
        "x": x,
        "y": 1,
        "xref": "x",
        "yref": "paper",
        "text": text,
        "showarrow": False,
        "yanchor": "bottom",
        "font": {"size": 10, "color": colour},
    }


def _has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame and bool(frame[column].notna().any())


def floats(values: Any) -> list[float | None]:
    """Plain floats for JSON; NaN and infinities become gaps (None)."""
    array = np.asarray(values, dtype=float)
    return [None if not np.isfinite(v) else round(float(v), 6) for v in array]
