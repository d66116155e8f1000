"""The sweep's charts (PNG), each drawn from cells.parquet's means and 95 % intervals.

x is always the offered rate; one line per configuration of the other varied
fields. Error bars are the t intervals of cells with repetitions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from scalelab.analysis.plots import figure, outside_legend, save

RATE_KEYS = ("load.rate",)
SUSTAINED_SHARE = 0.5
"""A cell where fewer than this share of runs sustained its rate (`judge.py`) is saturated."""


def line_groups(cells: pd.DataFrame, params: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows sorted by offered rate) per configuration of the non-rate parameters."""
    others = [p for p in params if p not in RATE_KEYS and p in cells]
    if not others:
        return [("all", cells.sort_values("offered_rate"))]
    groups = []
    for values, group in cells.groupby(others, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, values, strict=True))
        groups.append((label, group.sort_values("offered_rate")))
    return groups


def _errorbar(ax: Axes, group: pd.DataFrame, column: str, label: str, **style: object) -> None:
    y = group[column].to_numpy(dtype=float)
    low = group.get(f"{column}_lo")
    high = group.get(f"{column}_hi")
    yerr = None
    if low is not None and high is not None and low.notna().any():
        yerr = np.vstack([y - low.to_numpy(dtype=float), high.to_numpy(dtype=float) - y])
        yerr = np.nan_to_num(yerr)
    x = group["offered_rate"].to_numpy(dtype=float)
    ax.errorbar(x, y, yerr=yerr, marker="o", capsize=3, label=label, **style)  # type: ignore[arg-type]


def latency_chart(
    cells: pd.DataFrame, params: list[str], slo_s: float | None, path: Path
) -> Path | None:
    if cells.empty or "latency_p99_s" not in cells or cells["latency_p99_s"].isna().all():
        return None
    fig, ax = figure("Latency vs offered load (p50 dashed, p99 solid)", "seconds")
    for index, (label, group) in enumerate(line_groups(cells, params)):
        colour = f"C{index % 10}"
        _errorbar(ax, group, "latency_p99_s", f"{label} p99", color=colour)
        _errorbar(ax, group, "latency_p50_s", f"{label} p50", color=colour, ls="--", alpha=0.7)
    if slo_s is not None:
        ax.axhline(slo_s, color="#c62828", ls=":", lw=1.5, label=f"SLO p99 {slo_s * 1000:g} ms")
    ax.set_xlabel("offered rate (msg/s)")
    outside_legend(ax)
    return save(fig, path)


def throughput_chart(cells: pd.DataFrame, params: list[str], path: Path) -> Path | None:
    if cells.empty or "throughput" not in cells or cells["throughput"].isna().all():
        return None
    fig, ax = figure("Completed throughput vs offered load (× = first rate not sustained)", "msg/s")
    top = float(np.nanmax(cells["offered_rate"].to_numpy(dtype=float)))
    ax.plot([0, top], [0, top], color="black", ls=":", lw=1, label="completed = offered")
    for index, (label, group) in enumerate(line_groups(cells, params)):
        colour = f"C{index % 10}"
        _errorbar(ax, group, "throughput", label, color=colour)
        share = group["sustained"].astype(float) if "sustained" in group else None
        saturated = group[share < SUSTAINED_SHARE] if share is not None else group.iloc[:0]
        if not saturated.empty:
            first = saturated.iloc[0]
            ax.plot(first["offered_rate"], first["throughput"], "x", ms=14, mew=3, color=colour)
    ax.set_xlabel("offered rate (msg/s)")
    outside_legend(ax)
    return save(fig, path)


def energy_chart(cells: pd.DataFrame, params: list[str], path: Path) -> Path | None:
    if cells.empty or "joules_per_frame" not in cells or cells["joules_per_frame"].isna().all():
        return None
    fig, ax = figure("Energy per frame vs offered load", "J/frame")
    for index, (label, group) in enumerate(line_groups(cells, params)):
        _errorbar(ax, group, "joules_per_frame", label, color=f"C{index % 10}")
    ax.set_xlabel("offered rate (msg/s)")
    outside_legend(ax)
    return save(fig, path)


def capacity_chart(table: pd.DataFrame, path: Path) -> Path | None:
    """Capacity per worker count, with ideal linear scaling from the smallest count."""
    known = table.dropna(subset=["capacity"])
    if known.empty:
        return None
    fig, ax = figure("Capacity vs workers (dotted: linear scaling)", "sustainable msg/s")
    x = known["workers"].to_numpy(dtype=float)
    y = known["capacity"].to_numpy(dtype=float)
    ax.plot(x, y, marker="o", color="C0", label="capacity")
    ax.plot(x, y[0] * x / x[0], ls=":", color="black", label="linear from first")
    for xi, yi, eff in zip(x, y, known["efficiency"], strict=True):
        if pd.notna(eff):
            ax.annotate(f"{eff:.0%}", (xi, yi), textcoords="offset points", xytext=(4, 6))
    ax.set_xlabel("workers")
    ax.set_xticks(x)
    outside_legend(ax)
    return save(fig, path)
