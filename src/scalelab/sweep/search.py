"""Binary search for the highest sustainable rate of one configuration.

The upper bound is probed first: if the system sustains it, the bound was
wrong and the result says "at least" (no extrapolation). Otherwise the
interval [lower, upper) is halved until it is no wider than the resolution;
the capacity is the highest rate that was sustained, and the lowest rate
that was not is kept next to it, so every claim rests on two real runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


class SearchInterrupted(Exception):
    """A probe run was aborted (Ctrl-C): the search stops; re-running resumes it."""


@dataclass
class SearchResult:
    capacity: float | None
    """Highest rate sustained; None when none was (then it is below `first_failing`)."""
    first_failing: float | None
    """Lowest rate probed that was not sustained; None when the upper bound was sustained."""
    probes: list[tuple[float, bool]] = field(default_factory=list)
    note: str = ""


def search(
    sustains: Callable[[float], bool], upper: float, resolution: float, lower: float = 0.0
) -> SearchResult:
    """Probe `upper`, then bisect (lower, upper) down to `resolution` (msg/s).

    A `lower` above 0 is a floor the caller expects to be sustained: it is probed
    only when no bisection probe was, so the result still rests on a real run.
    """
    probes: list[tuple[float, bool]] = []

    def probe(rate: float) -> bool:
        ok = sustains(rate)
        probes.append((rate, ok))
        return ok

    if probe(upper):
        note = f"sustained the upper bound {upper:g} msg/s: capacity is at least that"
        return SearchResult(upper, None, probes, note)
    low, high = lower, upper
    while high - low > resolution:
        middle = round_rate((low + high) / 2, resolution)
        if middle <= low or middle >= high:
            break
        if probe(middle):
            low = middle
        else:
            high = middle
    if lower > 0 and not any(ok for _, ok in probes):
        probe(lower)
    sustained = [rate for rate, ok in probes if ok]
    if not sustained:
        floor = lower if lower > 0 else high
        return SearchResult(None, floor, probes, f"not even {floor:g} msg/s was sustained")
    return SearchResult(max(sustained), high, probes)


def round_rate(rate: float, resolution: float) -> float:
    """Probe rates on a grid a tenth of the resolution wide (readable, repeatable values)."""
    grain = resolution / 10
    return round(round(rate / grain) * grain, 6)


def combine(first: SearchResult, second: SearchResult, note: str) -> SearchResult:
    """Two searches of one configuration as one: every rate probed once, the highest sustained
    rate, and the lowest failing rate above it (or below everything, when none was sustained)."""
    probes = list(dict(first.probes + second.probes).items())
    sustained = [rate for rate, ok in probes if ok]
    capacity = max(sustained) if sustained else None
    failing = [rate for rate, ok in probes if not ok and (capacity is None or rate > capacity)]
    notes = "; ".join(text for text in (note, second.note) if text)
    return SearchResult(capacity, min(failing) if failing else None, probes, notes)


def probes_needed(upper: float, resolution: float, lower: float = 0.0) -> int:
    """How many probes `search` makes at most: the bound, one per halving, then the floor."""
    span = max(upper - lower, resolution)
    return 1 + max(0, math.ceil(math.log2(span / resolution))) + (1 if lower > 0 else 0)


def grid_points(upper: float, resolution: float) -> int:
    """Runs an exhaustive grid from `resolution` to `upper` in `resolution` steps would need."""
    return max(1, math.floor(upper / resolution + 1e-9))
