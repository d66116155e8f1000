"""Time-series plots of a run as PNG files (matplotlib's Agg canvas, no pyplot state).

Every plot shares the x axis "seconds since traffic started" and shades the
phases: warmup grey, cooldown blue; each fault's window is a red band, other
events (a fault with no end, a killed worker) dashed red lines.
A plot without data is not drawn (its function returns None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PHASE_COLOURS = {"warmup": ("#9e9e9e", 0.25), "cooldown": ("#64b5f6", 0.18)}
FAULT_COLOUR = "#e53935"
DPI = 100
LINE_STYLES: dict[str, dict[str, Any]] = {
    "target rate": {"color": "black", "ls": "--", "lw": 1.4, "zorder": 5},
    "input rate": {"color": "#ef6c00", "lw": 1.6, "alpha": 0.8},
    "throughput": {"color": "#1565c0", "lw": 1.8},
}


@dataclass
class Timeline:
    """What every time plot draws behind its data (seconds since traffic started)."""

    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    events: list[tuple[float, str]] = field(default_factory=list)
    faults: list[tuple[float, float, str]] = field(default_factory=list)
    """Fault windows: start, end, label."""


def figure(title: str, ylabel: str, size: tuple[float, float] = (10, 3.6)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def save(fig: Figure, path: Path) -> Path:
    """The PNG at `path` (returned), and the same figure as SVG beside it, for papers.

    The SVG keeps the layout the PNG's draw computed: solving the constrained layout a
    second time would cost about a third of the drawing, to move things by under a point."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    fig.set_layout_engine("none")
    fig.savefig(path.with_suffix(".svg"), format="svg")
    return path


def outside_legend(ax: Axes) -> None:
    """The legend right of the plot, where it hides no data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)


def timeline_axes(title: str, ylabel: str, timeline: Timeline) -> tuple[Figure, Axes]:
    fig, ax = figure(title, ylabel)
    for name, (start, end) in timeline.phases.items():
        if name in PHASE_COLOURS:
            colour, alpha = PHASE_COLOURS[name]
            ax.axvspan(start, end, color=colour, alpha=alpha, lw=0, label=name)
    for start, end, label in timeline.faults:
        ax.axvspan(start, end, color=FAULT_COLOUR, alpha=0.16, lw=0, label=label)
    for at, label in timeline.events:
        ax.axvline(at, color="#c62828", ls="--", lw=1, label=label)
    ax.set_xlabel("seconds since traffic started")
    return fig, ax


def line_plot(
    frame: pd.DataFrame,
    columns: Sequence[str],
    path: Path,
    title: str,
    ylabel: str,
    timeline: Timeline,
    scale: float = 1.0,
    hline: tuple[float, str] | None = None,
) -> Path | None:
    """Columns of a key-series frame as lines; None when none of them has data."""
    present = [c for c in columns if c in frame and frame[c].notna().any()]
    if not present:
        return None
    fig, ax = timeline_axes(title, ylabel, timeline)
    for name in present:
        style = LINE_STYLES.get(name, {})
        ax.plot(frame.index, frame[name] * scale, label=name, drawstyle="steps-post", **style)
    if hline is not None:
        top = float(np.nanmax(frame[present].to_numpy()) * scale)
        limit(ax, hline[0] * scale, f"{hline[1]} {hline[0] * scale:g} {ylabel}", top)
    ax.set_ylim(bottom=0)
    outside_legend(ax)
    return save(fig, path)


def limit(ax: Axes, value: float, label: str, data_max: float) -> None:
    """A limit line (an SLO); when far above the data, a note instead of squashing the plot."""
    if value <= 2 * data_max:
        ax.axhline(value, color="#6a1b9a", ls=":", lw=1.5, label=label)
    else:
        ax.text(
            0.99,
            0.96,
            f"{label}: above the plot",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color="#6a1b9a",
        )


def lag_plot(samples: list[dict[str, float]], path: Path, timeline: Timeline) -> Path | None:
    if not samples:
        return None
    fig, ax = timeline_axes("Consumer lag (messages not yet consumed)", "messages", timeline)
    t = [s["t"] for s in samples]
    ax.plot(
        t,
        [s["lag"] for s in samples],
        drawstyle="steps-post",
        color="#ef6c00",
        label="consumer lag",
    )
    ax.set_ylim(bottom=0)
    outside_legend(ax)
    return save(fig, path)


def cpu_plot(frame: pd.DataFrame, path: Path, timeline: Timeline) -> Path | None:
    """Cores per component stacked, with the host's busy cores on top as a line."""
    components = [c for c in frame.columns if c.startswith("cpu ") and frame[c].notna().any()]
    if not components:
        return None
    fig, ax = timeline_axes("CPU per component", "cores", timeline)
    stacked = np.nan_to_num(frame[components].to_numpy(dtype=float).T)
    ax.stackplot(frame.index, stacked, labels=[c[4:] for c in components], step="post", alpha=0.85)
    if "host cpu busy" in frame and frame["host cpu busy"].notna().any():
        ax.plot(
            frame.index,
            frame["host cpu busy"],
            color="black",
            lw=1.2,
            drawstyle="steps-post",
            label="host busy (all processes)",
        )
    ax.set_ylim(bottom=0)
    outside_legend(ax)
    return save(fig, path)


def power_plot(frame: pd.DataFrame, path: Path, timeline: Timeline, estimate: bool) -> Path | None:
    title = (
        "Power (ESTIMATE from CPU time, see the model below)" if estimate else "Power (measured)"
    )
    return line_plot(frame, ["power"], path, title, "watts", timeline)


def time_plots(
    frame: pd.DataFrame,
    lag: list[dict[str, float]],
    out: Path,
    timeline: Timeline,
    estimate: bool,
    slo_p99: float | None = None,
) -> dict[str, Path]:
    """Every time plot that has data, by name."""
    p99_line = (slo_p99, "SLO p99") if slo_p99 else None
    made = {
        "rate": line_plot(
            frame,
            ["target rate", "input rate"],
            out / "rate.png",
            "Target vs achieved input rate",
            "messages/s",
            timeline,
        ),
        "throughput": line_plot(
            frame,
            ["throughput", "input rate"],
            out / "throughput.png",
            "Throughput (frames completed per second)",
            "per second",
            timeline,
        ),
        "latency": line_plot(
            frame,
            ["latency p50", "latency p95", "latency p99"],
            out / "latency.png",
            "End-to-end latency from intended send time",
            "milliseconds",
            timeline,
            scale=1000,
            hline=p99_line,
        ),
        "consumer_lag": lag_plot(lag, out / "consumer_lag.png", timeline),
        "cpu": cpu_plot(frame, out / "cpu.png", timeline),
        "power": power_plot(frame, out / "power.png", timeline, estimate),
    }
    return {name: path for name, path in made.items() if path is not None}
