"""Rate profiles given by formulas: constant, step, ramp, sine, diurnal and Poisson."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from scalelab.load.config import (
    ConstantLoad,
    DiurnalLoad,
    PoissonLoad,
    RampLoad,
    SineLoad,
    StepLoad,
)
from scalelab.load.profile_base import PiecewiseProfile, RateProfile
from scalelab.load.rates import PiecewiseRate, RateConversion

SINE_PIECES_PER_PERIOD = 360
"""The schedule follows a sine through straight pieces (rate error below 0.004 % of amplitude)."""

MAX_SINE_PIECES = 1_000_000
"""Upper bound on the pieces of a sine schedule; longer runs use coarser pieces."""


class ConstantProfile(PiecewiseProfile):
    def __init__(self, spec: ConstantLoad, base_dir: Path | str | None = None):
        super().__init__(spec, PiecewiseRate.steps([0.0, spec.duration], [spec.rate]))


class StepProfile(PiecewiseProfile):
    """Steps in order; the last rate holds until the duration; steps past it are cut."""

    def __init__(self, spec: StepLoad, base_dir: Path | str | None = None):
        starts = np.concatenate([[0.0], np.cumsum([step.duration for step in spec.steps])[:-1]])
        inside = starts < spec.duration
        rates = np.array([step.rate for step in spec.steps])[inside]
        super().__init__(spec, PiecewiseRate.steps(np.append(starts[inside], spec.duration), rates))


class RampProfile(PiecewiseProfile):
    def __init__(self, spec: RampLoad, base_dir: Path | str | None = None):
        pieces = PiecewiseRate.linear([0.0, spec.duration], [spec.start_rate, spec.end_rate])
        super().__init__(spec, pieces)


class SineProfile(PiecewiseProfile):
    """Followed by the schedule through `SINE_PIECES_PER_PERIOD` straight pieces a period."""

    def __init__(self, spec: SineLoad, base_dir: Path | str | None = None):
        self.mean, self.amplitude, self.period = spec.mean_rate, spec.amplitude, spec.period
        n = min(math.ceil(spec.duration / spec.period * SINE_PIECES_PER_PERIOD), MAX_SINE_PIECES)
        edges = np.linspace(0.0, spec.duration, n + 1)
        super().__init__(spec, PiecewiseRate.linear(edges, self._wave(edges)))

    def _wave(self, t: np.ndarray) -> np.ndarray:
        return self.mean + self.amplitude * np.sin(2 * np.pi * t / self.period)

    def _rate_at(self, elapsed: float) -> float:
        return float(self._wave(np.asarray(elapsed)))


class DiurnalProfile(PiecewiseProfile):
    """The 24-hour curve, interpolated to `breakpoints` constant steps per day."""

    def __init__(self, spec: DiurnalLoad, base_dir: Path | str | None = None):
        hours = np.arange(spec.breakpoints) * 24.0 / spec.breakpoints
        day = np.interp(hours, np.arange(25.0), [*spec.curve, spec.curve[0]])
        n = math.ceil(spec.cycles * spec.breakpoints - 1e-9)
        step = spec.duration / spec.cycles / spec.breakpoints
        edges = np.minimum(np.arange(n + 1) * step, spec.duration)
        edges[-1] = spec.duration
        rates = np.resize(day * spec.peak_rate / 100.0, n)
        super().__init__(spec, PiecewiseRate.steps(edges, rates))


class PoissonProfile(RateProfile):
    """Exponential inter-arrival times at the mean rate, from a seeded generator."""

    def __init__(self, spec: PoissonLoad, base_dir: Path | str | None = None):
        super().__init__(spec)
        self.rate, self.seed = spec.rate, spec.seed

    def _rate_at(self, elapsed: float) -> float:
        return self.rate

    def schedule(self, conversion: RateConversion) -> Iterator[float]:
        rng = np.random.default_rng(self.seed)
        scale = 1.0 / conversion.apply(self.rate)
        last = 0.0
        while True:
            times = last + np.cumsum(rng.exponential(scale, 4096))
            yield from times[times < self.duration].tolist()
            if times[-1] >= self.duration:
                return
            last = float(times[-1])

    def expected_count(self, conversion: RateConversion) -> int:
        return round(conversion.apply(self.rate) * self.duration)

    def count_before(self, t: float, conversion: RateConversion) -> int:
        """The expected number of messages before offset t (a draw differs by about its root)."""
        return round(conversion.apply(self.rate) * min(max(t, 0.0), self.duration))
