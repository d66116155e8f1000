"""The plots that are not over time: stage breakdown, correlation heat map, run comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalelab.analysis.plots import figure, save

STAGES = ("queue", "decode", "preprocess", "inference", "postprocess")
STAGE_COLOURS = ("#90a4ae", "#4db6ac", "#ffb74d", "#e57373", "#9575cd")


def stage_plot(qos: pd.DataFrame, path: Path) -> Path | None:
    """Mean time per stage per worker, stacked (load-phase rows only, as given)."""
    if qos.empty:
        return None
    means = qos.groupby("worker")[[f"{s}_s" for s in STAGES]].mean() * 1000
    means.loc["all workers"] = qos[[f"{s}_s" for s in STAGES]].mean() * 1000
    fig, ax = figure(
        "Per-stage time per frame (mean, load phase)",
        "milliseconds",
        size=(10, 0.9 + 0.5 * len(means)),
    )
    left = np.zeros(len(means))
    labels = [str(w) for w in means.index]
    for stage, colour in zip(STAGES, STAGE_COLOURS, strict=True):
        values = means[f"{stage}_s"].fillna(0).to_numpy()
        ax.barh(labels, values, left=left, color=colour, label=stage)
        left += values
    ax.set_ylabel("")
    ax.set_xlabel("milliseconds (stacked mean)")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), fontsize=8, ncols=5)
    return save(fig, path)


def heatmap(matrix: pd.DataFrame, path: Path) -> Path | None:
    """Pearson coefficients between the headline series, annotated."""
    if matrix.shape[0] < 2:
        return None
    size = 2.5 + 0.55 * len(matrix)
    fig, ax = figure("Pearson correlation over the load phase", "", size=(size + 1.5, size))
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(
        range(len(matrix)), labels=list(matrix.columns), rotation=45, ha="right", fontsize=8
    )
    ax.set_yticks(range(len(matrix)), labels=list(matrix.index), fontsize=8)
    ax.grid(False)
    for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
        if np.isfinite(value):
            colour = "white" if abs(value) > 0.6 else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return save(fig, path)


def cpu_bars(cpu: dict[str, dict[str, float]], path: Path) -> Path | None:
    """Average cores per component over the load phase (summary.json), when no series exist."""
    if not cpu:
        return None
    names = sorted(cpu)
    fig, ax = figure("CPU per component (average over the load phase)", "cores")
    ax.bar(names, [cpu[n].get("cores", 0.0) for n in names], color="#5c6bc0")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return save(fig, path)


def comparison_bars(table: pd.DataFrame, path: Path) -> Path | None:
    """Throughput and latency p99 side by side for each run."""
    if table.empty or table[["throughput", "latency_p99_s"]].isna().all().all():
        return None
    fig, ax = figure("Throughput and p99 latency per run", "frames/s")
    x = np.arange(len(table))
    ax.bar(
        x - 0.2,
        table["throughput"].astype(float).fillna(0),
        0.4,
        color="#26a69a",
        label="throughput (frames/s)",
    )
    other = ax.twinx()
    other.bar(
        x + 0.2,
        table["latency_p99_s"].astype(float).fillna(0) * 1000,
        0.4,
        color="#ef5350",
        label="latency p99 (ms)",
    )
    other.set_ylabel("milliseconds")
    ax.set_xticks(x, labels=[str(i) for i in table.index], rotation=20, ha="right", fontsize=7)
    handles = ax.get_legend_handles_labels()[0] + other.get_legend_handles_labels()[0]
    other.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.95)
    return save(fig, path)
