"""The rate profile interface: `tick()` for the target rate, `schedule()` for send times."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from scalelab.load.config import LoadSpec
from scalelab.load.rates import PiecewiseRate, RateConversion


class RateProfile(ABC):
    """Target rate over time, in the spec's unit, and the send schedule that follows it.

    Subclasses take `(spec, base_dir)`: the `load:` spec and the directory
    relative paths in it are resolved against.
    """

    def __init__(self, spec: LoadSpec, base_dir: Path | str | None = None):
        self.duration = float(spec.duration)
        self.warmup = float(spec.warmup)
        self.unit = spec.unit
        self.max_mbps = spec.max_mbps

    def tick(self, elapsed: float) -> float | None:
        """Target rate `elapsed` seconds after load start, or None once the load is over."""
        if elapsed < 0:
            raise ValueError(f"elapsed must be >= 0, got {elapsed}")
        return None if elapsed >= self.duration else self._rate_at(elapsed)

    @abstractmethod
    def _rate_at(self, elapsed: float) -> float: ...

    @abstractmethod
    def schedule(self, conversion: RateConversion) -> Iterator[float]:
        """Intended send offsets (seconds since start), with rates converted to messages/s."""

    @abstractmethod
    def expected_count(self, conversion: RateConversion) -> int:
        """About how many messages `schedule` yields (exact for deterministic profiles)."""


class PiecewiseProfile(RateProfile):
    """A deterministic profile: its schedule integrates `pieces`, its rate over [0, duration]."""

    def __init__(self, spec: LoadSpec, pieces: PiecewiseRate):
        super().__init__(spec)
        self.pieces = pieces

    def _rate_at(self, elapsed: float) -> float:
        return self.pieces.rate_at(elapsed)

    def schedule(self, conversion: RateConversion) -> Iterator[float]:
        return self.pieces.converted(conversion).times()

    def expected_count(self, conversion: RateConversion) -> int:
        return self.pieces.converted(conversion).total()
