"""Open-loop send schedules from piecewise-linear rates, and unit conversion.

A rate r(t) is held as consecutive linear pieces. The k-th message (k = 0, 1,
...) is sent at the first instant the expected count N(t) = integral of r
from 0 to t exceeds k. Each time is computed in closed form from its index and
the count at the start of its piece, never by adding inter-arrival gaps, so
no error accumulates: a 1000/s schedule sends message 1,000,000 at exactly
1000.0 s. Pieces where the rate is 0 hold no message, so the schedule skips
straight to where the rate becomes positive again.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from scalelab.errors import ConfigError

BYTES_PER_MB = 1_000_000
"""MB/s in `unit: mbps` and `max_mbps` are 10^6 bytes per second."""

_CHUNK = 4096
_SNAP_ABS, _SNAP_REL = 1e-9, 1e-12


def mbps_to_msgs(mbps: float, mean_frame_bytes: float) -> float:
    """Messages per second that carry `mbps` MB/s of frames of `mean_frame_bytes` bytes."""
    if mean_frame_bytes <= 0:
        raise ValueError(f"mean frame size must be positive, got {mean_frame_bytes}")
    return mbps * BYTES_PER_MB / mean_frame_bytes


@dataclass(frozen=True)
class RateConversion:
    """From a profile's unit to messages per second, with an optional ceiling."""

    msgs_per_unit: float = 1.0
    max_msgs_per_s: float | None = None

    def apply(self, rate: float) -> float:
        """Rate in messages per second for `rate` in the profile's unit."""
        msgs = rate * self.msgs_per_unit
        return msgs if self.max_msgs_per_s is None else min(msgs, self.max_msgs_per_s)


def rate_conversion(
    unit: str, max_mbps: float | None, mean_frame_bytes: float | None
) -> RateConversion:
    """The conversion for a load spec's `unit` and `max_mbps` and the source's mean frame size."""
    if unit != "mbps" and max_mbps is None:
        return RateConversion()
    if mean_frame_bytes is None:
        raise ConfigError(
            "a load in MB/s ('unit: mbps' or 'max_mbps') needs the mean encoded frame size "
            "of the source"
        )
    per_unit = mbps_to_msgs(1.0, mean_frame_bytes) if unit == "mbps" else 1.0
    cap = None if max_mbps is None else mbps_to_msgs(max_mbps, mean_frame_bytes)
    return RateConversion(msgs_per_unit=per_unit, max_msgs_per_s=cap)


@dataclass(frozen=True)
class PiecewiseRate:
    """Piece i runs from edges[i] to edges[i+1], linear from left[i] to right[i]."""

    edges: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @classmethod
    def steps(cls, edges: ArrayLike, rates: ArrayLike) -> PiecewiseRate:
        """Constant pieces: rates[i] between edges[i] and edges[i+1]."""
        values = np.asarray(rates, dtype=float)
        return cls(np.asarray(edges, dtype=float), values, values)

    @classmethod
    def linear(cls, edges: ArrayLike, values: ArrayLike) -> PiecewiseRate:
        """Straight pieces through the points (edges[i], values[i])."""
        points = np.asarray(values, dtype=float)
        return cls(np.asarray(edges, dtype=float), points[:-1], points[1:])

    def rate_at(self, t: float) -> float:
        """The rate at time t (the right-hand value at an edge), 0 outside the pieces."""
        i = int(np.searchsorted(self.edges, t, side="right")) - 1
        if i < 0 or i >= len(self.left):
            return 0.0
        t0, t1 = self.edges[i], self.edges[i + 1]
        frac = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
        return float(self.left[i] + (self.right[i] - self.left[i]) * frac)

    def converted(self, conversion: RateConversion) -> PiecewiseRate:
        """The rate in messages per second, split where it crosses the ceiling."""
        scaled = PiecewiseRate(
            self.edges, self.left * conversion.msgs_per_unit, self.right * conversion.msgs_per_unit
        )
        cap = conversion.max_msgs_per_s
        return scaled if cap is None else scaled._capped(cap)

    def _capped(self, cap: float) -> PiecewiseRate:
        t0, t1, lo, hi = self.edges[:-1], self.edges[1:], self.left, self.right
        crosses = (lo > cap) != (hi > cap)
        with np.errstate(divide="ignore", invalid="ignore"):
            split = np.where(crosses, t0 + (cap - lo) / (hi - lo) * (t1 - t0), t1)
        edges = np.column_stack([t0, split]).ravel()
        left = np.column_stack([np.minimum(lo, cap), np.full_like(lo, cap)]).ravel()
        right = np.column_stack([np.where(crosses, cap, np.minimum(hi, cap)), np.minimum(hi, cap)])
        keep = np.diff(np.append(edges, t1[-1])) > 0
        return PiecewiseRate(np.append(edges[keep], t1[-1]), left[keep], right.ravel()[keep])

    def cumulative(self) -> np.ndarray:
        """Expected message count at each edge, snapped to integers within float noise.

        Raises ConfigError when the count is not finite (an infinite rate), which
        no schedule can follow.
        """
        counts = np.concatenate(
            [[0.0], np.cumsum((self.left + self.right) / 2 * np.diff(self.edges))]
        )
        if not np.all(np.isfinite(counts)):
            raise ConfigError(f"the load's message count is not finite ({counts[-1]:g})")
        return _snap(counts)

    def total(self) -> int:
        """Number of messages the schedule sends."""
        return math.ceil(self.cumulative()[-1])

    def count_before(self, t: float) -> int:
        """How many messages `times()` sends before offset t, without generating them.

        Message k goes at the instant the expected count reaches k, and the count
        only grows, so the messages before t are those with k < N(t): ceil(N(t)).
        """
        counts = self.cumulative()
        i = int(np.searchsorted(self.edges, t, side="right")) - 1
        if i < 0:
            return 0
        if i >= len(self.left):
            return math.ceil(counts[-1])
        t0, t1 = float(self.edges[i]), float(self.edges[i + 1])
        x, rate0 = t - t0, float(self.left[i])
        slope = (float(self.right[i]) - rate0) / (t1 - t0)
        count = float(_snap(np.asarray(counts[i] + rate0 * x + slope * x * x / 2)))
        return min(math.ceil(count), math.ceil(counts[-1]))

    def times(self) -> Iterator[float]:
        """Send offsets in seconds of every message, in order."""
        counts = self.cumulative()
        stop = math.ceil(counts[-1])
        for i in range(len(self.left)):
            first, last = math.ceil(counts[i]), min(math.ceil(counts[i + 1]), stop)
            if first < last:
                yield from self._piece_times(i, counts[i], first, last)

    def _piece_times(self, i: int, count0: float, first: int, last: int) -> Iterator[float]:
        t0, t1 = float(self.edges[i]), float(self.edges[i + 1])
        rate0 = float(self.left[i])
        slope = (float(self.right[i]) - rate0) / (t1 - t0)
        for start in range(first, last, _CHUNK):
            owed = np.arange(start, min(start + _CHUNK, last), dtype=float) - count0
            yield from (t0 + _time_to_send(owed, rate0, slope)).tolist()


def _snap(counts: np.ndarray) -> np.ndarray:
    """Counts within float noise of an integer, made that integer."""
    nearest = np.round(counts)
    close = np.abs(counts - nearest) <= np.maximum(_SNAP_ABS, _SNAP_REL * nearest)
    return np.where(close, nearest, counts)


def _time_to_send(owed: np.ndarray, rate0: float, slope: float) -> np.ndarray:
    """Solve rate0 * x + slope * x**2 / 2 = owed for x >= 0 (the stable root)."""
    if slope == 0.0:
        return owed / rate0
    root = np.sqrt(np.maximum(rate0 * rate0 + 2.0 * slope * owed, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(owed > 0, 2.0 * owed / (rate0 + root), 0.0)
