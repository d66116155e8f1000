"""The producer's clock: UTC epoch ns that only the monotonic clock advances.

The wall clock is read once, when the start is fixed; every later time is
that reading plus monotonic time elapsed, so a step of the host's clock (NTP)
neither stalls nor bursts the load. Tests inject their own `ClockSource`.
"""

from __future__ import annotations

import time
from typing import Protocol


class ClockSource(Protocol):
    """The host's clocks, or a test's."""

    def wall_ns(self) -> int: ...
    def monotonic_ns(self) -> int: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks: the `time` functions themselves (the send path reads the clock per
    message, and a Python method around `time.monotonic_ns` doubled the cost of a reading)."""

    wall_ns = staticmethod(time.time_ns)
    monotonic_ns = staticmethod(time.monotonic_ns)
    sleep = staticmethod(time.sleep)


class PacingClock:
    """UTC epoch ns that only the monotonic clock advances: the wall clock is read once.

    `now_ns()` = wall time at the anchor + monotonic time since. Intended and
    actual send times stay UTC epoch ns, but a step of the wall clock after the
    anchor changes neither the pacing nor the lag.
    """

    def __init__(self, source: ClockSource | None = None):
        self.source = source or SystemClock()
        wall, mono = self.source.wall_ns(), self.source.monotonic_ns()
        self.shift_ns = wall - mono
        self.monotonic_ns = self.source.monotonic_ns
        self.sleep = self.source.sleep

    def now_ns(self) -> int:
        return self.monotonic_ns() + self.shift_ns
