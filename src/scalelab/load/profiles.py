"""Rate profiles: the target rate at each instant, and the open-loop send schedule.

A profile is an object with `tick(elapsed)`, the target rate in the spec's
unit `elapsed` seconds after load start, or None once the load is over (the
shape of Locust's LoadTestShape), so profiles are tested without waiting for
time to pass. `send_times()` turns a profile into the intended send offset of
every message, lazily (a schedule of 10^12 messages costs no memory); the
producer sleeps until each one, and latency is measured from these intended
times. `messages_before()` counts a schedule's messages without generating them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from scalelab.load.config import LoadSpec
from scalelab.load.profile_base import PiecewiseProfile, RateProfile
from scalelab.load.rates import (
    PiecewiseRate,
    RateConversion,
    mbps_to_msgs,
    rate_conversion,
)
from scalelab.load.shapes import (
    ConstantProfile,
    DiurnalProfile,
    PoissonProfile,
    RampProfile,
    SineProfile,
    StepProfile,
)
from scalelab.load.trace import TraceRatesProfile, TraceTimestampsProfile, trace_profile

PROFILES: dict[str, Callable[..., RateProfile]] = {
    "constant": ConstantProfile,
    "step": StepProfile,
    "ramp": RampProfile,
    "sine": SineProfile,
    "diurnal": DiurnalProfile,
    "poisson": PoissonProfile,
    "trace": trace_profile,
}
"""Profile classes keyed by the spec's `profile` string (a trace picks its class by column kind)."""


def make_profile(spec: LoadSpec, base_dir: Path | str | None = None) -> RateProfile:
    """The profile for a `load:` spec; relative trace paths resolve against `base_dir`."""
    profile: RateProfile = PROFILES[spec.profile](spec, base_dir)
    return profile


def send_times(profile: RateProfile, mean_frame_bytes: float | None = None) -> Iterator[float]:
    """Intended send offsets (seconds since load start) of every message, in order.

    `mean_frame_bytes` (the source's mean encoded frame size) is needed when
    the spec's unit is 'mbps' or it sets `max_mbps`.
    """
    return profile.schedule(rate_conversion(profile.unit, profile.max_mbps, mean_frame_bytes))


def expected_messages(profile: RateProfile, mean_frame_bytes: float | None = None) -> int:
    """About how many messages `send_times` yields, for progress bars."""
    conversion = rate_conversion(profile.unit, profile.max_mbps, mean_frame_bytes)
    return profile.expected_count(conversion)


def messages_before(
    profile: RateProfile, offset: float, mean_frame_bytes: float | None = None
) -> int:
    """How many messages `send_times` yields before `offset`, without generating them.

    Exact for deterministic profiles and traces; the expected count for Poisson.
    """
    conversion = rate_conversion(profile.unit, profile.max_mbps, mean_frame_bytes)
    if isinstance(profile, PiecewiseProfile):
        return profile.pieces.converted(conversion).count_before(offset)
    if isinstance(profile, PoissonProfile | TraceTimestampsProfile):
        return profile.count_before(offset, conversion)
    raise TypeError(f"no message count for {type(profile).__name__}")


def target_rate(
    profile: RateProfile, elapsed: float, mean_frame_bytes: float | None = None
) -> float | None:
    """`tick` in messages per second, ceiling applied (e.g. for a target-rate gauge)."""
    rate = profile.tick(elapsed)
    if rate is None:
        return None
    return rate_conversion(profile.unit, profile.max_mbps, mean_frame_bytes).apply(rate)


__all__ = [
    "PROFILES",
    "ConstantProfile",
    "DiurnalProfile",
    "PiecewiseProfile",
    "PiecewiseRate",
    "PoissonProfile",
    "RampProfile",
    "RateConversion",
    "RateProfile",
    "SineProfile",
    "StepProfile",
    "TraceRatesProfile",
    "TraceTimestampsProfile",
    "expected_messages",
    "make_profile",
    "mbps_to_msgs",
    "messages_before",
    "rate_conversion",
    "send_times",
    "target_rate",
]
