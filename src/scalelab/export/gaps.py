"""Holes in Prometheus's data, found from the raw samples of ``up``, and sample selection.

Prometheus writes one ``up`` sample for every scrape of every target, whether the
target answered or not, so a stretch with no ``up`` sample at all is a stretch in
which Prometheus was not scraping (killed, restarted, starved): a hole in its data.
A query evaluated on a grid hides such a hole by repeating the last value for up to
five minutes (the lookback delta); the raw samples keep it visible.

A hole is a spacing between consecutive scrapes (of any target) longer than
:data:`GAP_FACTOR` scrape intervals plus :data:`GAP_SLACK_S`; the slack absorbs a
scrape delayed on a busy machine without calling it missing data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from scalelab.export.promjson import SeriesBlock
from scalelab.export.segments import EPOCH, Window, format_time

GAP_FACTOR = 2.5
"""Scrape intervals without any sample that make a hole (as the verdict's scrape-gap check)."""
GAP_SLACK_S = 1.0
"""Seconds added to the limit so that one late scrape on a busy machine is not a hole."""


@dataclass(frozen=True)
class Gap:
    """A stretch with no sample: from the last scrape before it to the first one after.

    Either end is the expected coverage's edge when the hole reaches it.
    """

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def text(self) -> str:
        """``14:12:25–14:12:52`` (UTC), as warnings show it."""
        return f"{self.start:%H:%M:%S}–{self.end:%H:%M:%S}"

    def to_dict(self) -> dict[str, str | float]:
        return {
            "start": format_time(self.start),
            "end": format_time(self.end),
            "seconds": round(self.seconds, 3),
        }


def gap_limit(scrape_interval: float) -> float:
    """Seconds without a sample beyond which the data has a hole."""
    return GAP_FACTOR * scrape_interval + GAP_SLACK_S


def find_gaps(stamps_ns: np.ndarray, limit_s: float, expect: Window | None = None) -> list[Gap]:
    """Holes longer than ``limit_s`` between the sample times ``stamps_ns`` (any order).

    With ``expect``, samples were due over that whole window (Prometheus was meant to be
    scraping), so a hole may also touch its edges, and no sample at all is one hole.
    Without it only holes between the first and the last sample count.
    """
    stamps = np.unique(stamps_ns.astype(np.int64, copy=False))
    if expect is not None:
        start, end = _ns(expect.start), _ns(expect.end)
        inside = stamps[(stamps >= start) & (stamps <= end)]
        stamps = np.concatenate(([start], inside, [end]))
    limit_ns = round(limit_s * 1e9)
    holes = np.flatnonzero(np.diff(stamps) > limit_ns)
    return [Gap(_at(stamps[i]), _at(stamps[i + 1])) for i in holes]


def scrape_interval(block: SeriesBlock) -> float | None:
    """The longest of the series' median sample spacings, in seconds; None below two samples.

    The slowest target sets the interval so that its normal spacing is never a hole.
    """
    medians = []
    for stamps in _per_series(block.timestamps_ns, block.counts):
        if stamps.size >= 2:
            medians.append(float(np.median(np.diff(np.sort(stamps)))))
    return max(medians) / 1e9 if medians else None


def keep_between(block: SeriesBlock, start: datetime, end: datetime) -> SeriesBlock:
    """Only the samples with ``start <= timestamp <= end``; series left empty are dropped."""
    stamps = block.timestamps_ns
    return select(block, (stamps >= _ns(start)) & (stamps <= _ns(end)))


def drop_inside(block: SeriesBlock, gaps: list[Gap]) -> SeriesBlock:
    """The block without the points strictly inside a hole: values a grid query invented."""
    if not gaps or block.points == 0:
        return block
    stamps = block.timestamps_ns
    inside = np.zeros(stamps.size, dtype=bool)
    for gap in gaps:
        inside |= (stamps > _ns(gap.start)) & (stamps < _ns(gap.end))
    return select(block, ~inside)


def select(block: SeriesBlock, keep: np.ndarray) -> SeriesBlock:
    """The points where ``keep`` is true, series by series; series left empty are dropped."""
    if keep.all():
        return block
    owner = np.repeat(np.arange(len(block.labels)), block.counts)
    counts = np.bincount(owner[keep], minlength=len(block.labels)).astype(np.int64)
    present = np.flatnonzero(counts)
    return SeriesBlock(
        [block.labels[i] for i in present],
        counts[present],
        block.timestamps_ns[keep],
        block.values[keep],
    )


def _per_series(stamps: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    return np.split(stamps, np.cumsum(counts)[:-1]) if counts.size else []


def _ns(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def _at(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(ns) // 1000)
