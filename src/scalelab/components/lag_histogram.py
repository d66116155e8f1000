"""Schedule lags in a fixed-size log-linear histogram, however long the run."""

from __future__ import annotations

import math
from collections.abc import Iterable

_SUB_BITS = 6
_EXACT_BELOW = 1 << (_SUB_BITS + 1)
_LAG_BUCKETS = ((64 - _SUB_BITS - 1) << _SUB_BITS) + _EXACT_BELOW


class LagHistogram:
    """Schedule lags in ns, in 3,776 fixed log-linear buckets, whatever the run's length.

    Exact below 128 ns, then 64 buckets per power of two (HdrHistogram's
    layout), so a percentile is reported within 1/128 (0.8 %) of the true
    value (the bucket's middle); the maximum is exact.
    """

    def __init__(self) -> None:
        self.counts = [0] * _LAG_BUCKETS
        self.total = 0
        self.sum_ns = 0
        self.max_ns = 0

    def add(self, lag_ns: int) -> None:
        if lag_ns < 0:
            lag_ns = 0
        bits = lag_ns.bit_length()
        if bits > _SUB_BITS + 1:
            shift = bits - _SUB_BITS - 1
            self.counts[(shift << _SUB_BITS) + (lag_ns >> shift)] += 1
        else:
            self.counts[lag_ns] += 1
        self.total += 1
        self.sum_ns += lag_ns
        if lag_ns > self.max_ns:
            self.max_ns = lag_ns

    def merged(self, other: LagHistogram) -> LagHistogram:
        both = LagHistogram()
        both.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        both.total, both.sum_ns = self.total + other.total, self.sum_ns + other.sum_ns
        both.max_ns = max(self.max_ns, other.max_ns)
        return both

    def percentile_s(self, q: float) -> float | None:
        """The q-th percentile (nearest rank) in seconds, None when empty."""
        if self.total == 0:
            return None
        rank, seen = max(1, math.ceil(q / 100 * self.total)), 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                low, width = _bucket(index)
                return min(low + (width - 1) / 2, self.max_ns) / 1e9
        return self.max_ns / 1e9  # not reached: the counts add up to total

    def max_s(self) -> float | None:
        return None if self.total == 0 else self.max_ns / 1e9

    def cumulative(self, bounds_s: Iterable[float]) -> list[tuple[str, int]]:
        """Prometheus buckets: lags up to each bound (to the resolution), then +Inf."""
        running = [0]
        for count in self.counts:
            running.append(running[-1] + count)
        buckets = [(f"{b:g}", running[_index(int(b * 1e9)) + 1]) for b in bounds_s]
        return [*buckets, ("+Inf", self.total)]


def _index(lag_ns: int) -> int:
    bits = lag_ns.bit_length()
    if bits <= _SUB_BITS + 1:
        return lag_ns
    shift = bits - _SUB_BITS - 1
    return (shift << _SUB_BITS) + (lag_ns >> shift)


def _bucket(index: int) -> tuple[int, int]:
    """Lowest lag (ns) and width of bucket `index`."""
    if index < _EXACT_BELOW:
        return index, 1
    shift = (index >> _SUB_BITS) - 1
    return (index - (shift << _SUB_BITS)) << shift, 1 << shift
