"""Holes in the scraped data: consecutive samples of one series too far apart.

Prometheus marks a series stale when its target's scrape fails, so a failed
scrape shows as missing samples in the exported range. Only holes *between*
two samples count: a series that starts or stops inside the window (a worker
killed on purpose) is not a gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab.analysis.dataset import Window


def scrape_gaps(metrics: pd.DataFrame, window: Window, limit_s: float) -> pd.DataFrame:
    """Gaps longer than `limit_s` that overlap the window, longest first.

    Columns: series (`metric{labels}`), start_ns, end_ns, gap_s.
    """
    columns = ["series", "start_ns", "end_ns", "gap_s"]
    if metrics.empty:
        return pd.DataFrame(columns=columns)
    codes = metrics.groupby(["metric", "labels"], observed=True, sort=False).ngroup().to_numpy()
    times = metrics["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    order = np.lexsort((times, codes))
    codes, times = codes[order], times[order]
    same = codes[1:] == codes[:-1]
    start, end = times[:-1], times[1:]
    hole = same & (end - start > limit_s * 1e9) & (start < window[1]) & (end > window[0])
    found = np.flatnonzero(hole)
    if found.size == 0:
        return pd.DataFrame(columns=columns)
    rows = metrics.iloc[order[found]]
    gaps = pd.DataFrame(
        {
            "series": rows["metric"].astype(str).to_numpy() + rows["labels"].astype(str).to_numpy(),
            "start_ns": start[found],
            "end_ns": end[found],
            "gap_s": (end[found] - start[found]) / 1e9,
        }
    )
    return gaps.sort_values("gap_s", ascending=False, ignore_index=True)
