"""Per cell: mean and 95 % confidence interval of every figure over its repetitions.

The interval is Student's t: mean ± t(0.975, n−1) · s/√n, with s the sample
standard deviation of the repetitions. It assumes the repetitions are
independent draws of the same figure; with n = 1 there is no interval.

Disagreement: a repetition lies outside the 95 % *prediction* interval of
the other repetitions of its cell (mean ± t(0.975, m−1) · s·√(1 + 1/m), m
others, m ≥ 2). Then the runs differ more than their own spread allows (a
drifting machine, a noisy neighbour, a warm-up effect), and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
METHOD = "Student t, 95 % (mean ± t·s/√n over the cell's repetitions)"


@dataclass(frozen=True)
class Interval:
    mean: float | None
    low: float | None
    high: float | None
    n: int


def t_interval(values: Sequence[float]) -> Interval:
    """Mean and 95 % t interval of the finite values; no interval with fewer than two."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if data.size == 0:
        return Interval(None, None, None, 0)
    mean = float(data.mean())
    if data.size < 2:
        return Interval(mean, None, None, 1)
    half = _t(data.size - 1) * float(data.std(ddof=1)) / math.sqrt(data.size)
    return Interval(mean, mean - half, mean + half, int(data.size))


def outliers(values: Sequence[float]) -> list[int]:
    """Indices of values outside the 95 % prediction interval of the others (needs 3+ values)."""
    data = np.asarray(values, dtype=float)
    flagged = []
    for i in range(data.size):
        others = np.delete(data, i)
        others = others[np.isfinite(others)]
        if others.size < 2 or not math.isfinite(data[i]):
            continue
        spread = float(others.std(ddof=1)) * math.sqrt(1 + 1 / others.size)
        if abs(data[i] - float(others.mean())) > _t(others.size - 1) * spread:
            flagged.append(i)
    return flagged


def _t(df: int) -> float:
    return float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df))


def cell_table(runs: pd.DataFrame, params: list[str], figures: list[str]) -> pd.DataFrame:
    """One row per configuration: its parameters, n, and `<figure>`, `_lo`, `_hi` per figure.

    `disagree` names the figures where some repetition falls outside the others'
    prediction interval, with the run ids.
    """
    if runs.empty:
        return pd.DataFrame()
    rows = []
    present = [f for f in figures if f in runs]
    for config, group in runs.groupby("config", sort=False):
        row = {"config": config, **{p: group[p].iloc[0] for p in params if p in group}}
        row["runs"] = len(group)
        for figure in present:
            interval = t_interval(pd.to_numeric(group[figure], errors="coerce").tolist())
            row.update({figure: interval.mean, f"{figure}_lo": interval.low})
            row[f"{figure}_hi"] = interval.high
        row["disagree"] = _disagreement(group, present)
        rows.append(row)
    return pd.DataFrame(rows)


def _disagreement(group: pd.DataFrame, figures: list[str]) -> str:
    notes = []
    for figure in figures:
        values = pd.to_numeric(group[figure], errors="coerce").to_numpy(dtype=float)
        for index in outliers(values.tolist()):
            notes.append(f"{figure}: {group['run_id'].iloc[index]}")
    return "; ".join(notes)
