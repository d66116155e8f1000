"""The comparison page's overlaid charts: one line per run, on shared axes.

Latency CDFs of the load phase, and throughput and p99 latency over time
(seconds since each run's traffic started, so runs started at different
hours line up). The time charts are linked like a run's report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scalelab.analysis.analyse import load_qos
from scalelab.analysis.dataset import Run
from scalelab.analysis.interactive import CDF_POINTS, Chart, floats
from scalelab.analysis.series import first_completion_rows, qos_series, run_grid

PALETTE = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037")


def comparison_charts(runs: Sequence[Run]) -> list[Chart]:
    charts = [_cdf(runs), *_over_time(runs)]
    return [c for c in charts if c.data]


def _cdf(runs: Sequence[Run]) -> Chart:
    traces = []
    for index, run in enumerate(runs):
        ms = np.sort(load_qos(run)["latency_s"].to_numpy(dtype=float) * 1000)
        ms = ms[np.isfinite(ms)]
        if not ms.size:
            continue
        probs = np.linspace(0, 1, min(CDF_POINTS, ms.size))
        traces.append(overlay_trace(np.quantile(ms, probs), probs * 100, run.id, index, "%", "ms"))
    layout = overlay_layout(
        "Latency CDF (load phase)", "latency from intended send time (ms)", "messages (%)"
    )
    layout["xaxis"]["type"] = "log"
    return Chart(
        "chart-compare-cdf", "Latency CDF of each run's load phase.", traces, layout, linked=False
    )


def _over_time(runs: Sequence[Run]) -> list[Chart]:
    throughput, p99 = [], []
    for index, run in enumerate(runs):
        grid = run_grid(run)
        if grid is None or run.qos.empty:
            continue
        series = qos_series(first_completion_rows(run.qos), grid)
        t = grid.seconds
        throughput.append(overlay_trace(t, series["throughput"], run.id, index, "frames/s", "s"))
        p99.append(overlay_trace(t, series["latency p99"] * 1000, run.id, index, "ms", "s"))
    x_title = "seconds since traffic started (s)"
    return [
        Chart(
            "chart-compare-throughput",
            "Frames completed per second, each run.",
            throughput,
            overlay_layout("Throughput over time", x_title, "frames completed (frames/s)"),
        ),
        Chart(
            "chart-compare-p99",
            "Latency p99 per step, by completion time, each run.",
            p99,
            overlay_layout("Latency p99 over time", x_title, "latency p99 (ms)"),
        ),
    ]


def overlay_trace(
    x: Any, y: Any, name: str, index: int, y_unit: str, x_unit: str, **line: Any
) -> dict[str, Any]:
    """One run's line in the colour of its place; `line` overrides the style (shape, dash)."""
    return {
        "type": "scatter",
        "mode": "lines",
        "x": floats(x),
        "y": floats(y),
        "name": name,
        "line": {"color": PALETTE[index % len(PALETTE)], "width": 1.6, **line},
        "hovertemplate": f"{name}<br>%{{y:.4g}} {y_unit} at %{{x:.4g}} {x_unit}<extra></extra>",
    }


def overlay_layout(title: str, x_title: str, y_title: str) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "height": 330,
        "margin": {"l": 70, "r": 20, "t": 40, "b": 45},
        "legend": {"orientation": "h", "y": -0.3, "font": {"size": 10}},
    }
