"""Spec models of the load generator: the rate profile (`load:`) and the frame source (`source:`).

Both are discriminated unions keyed by the string that also keys the
registries in `profiles.py` and `sources.py`, so a spec names a profile or a
source the same way the code looks it up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scalelab.load.source_config import (
    DirectorySpec,
    Hdf5Spec,
    SourceSpec,
    SyntheticSpec,
    VideoSpec,
)
from scalelab.spec.types import LoadOffset, LoadSeconds, Seconds

__all__ = [
    "ConstantLoad",
    "DiurnalLoad",
    "DirectorySpec",
    "Hdf5Spec",
    "LoadSpec",
    "PoissonLoad",
    "RampLoad",
    "SineLoad",
    "SourceSpec",
    "Step",
    "StepLoad",
    "SyntheticSpec",
    "TraceLoad",
    "VideoSpec",
]

DEFAULT_DIURNAL_CURVE: tuple[float, ...] = (
    30, 22, 17, 15, 15, 18, 28, 45, 62, 72, 78, 82,
    85, 84, 80, 79, 83, 90, 97, 100, 94, 80, 62, 44,
)  # fmt: skip
"""Percent of the peak rate for each hour of a typical day: a night trough and an evening peak."""


MAX_RATE = 1_000_000.0
"""Highest rate a profile may ask for, in its `unit`: a million messages (or MB) per second."""

MAX_MBPS = 10_000.0
"""Highest rate in MB/s (10 GB/s, beyond any link a single producer host has)."""

Rate = Annotated[float, Field(le=MAX_RATE)]
"""A rate in the profile's `unit`; finite (the models refuse inf and NaN) and bounded."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _LoadCommon(_Strict):
    duration: LoadSeconds = Field(
        60.0,
        description="How long load is sent, warmup included (seconds, or '90s', '5m', '1h'; "
        "at most 7 days).",
    )
    warmup: LoadOffset = Field(
        0.0,
        description="The first part of `duration` whose load is sent but excluded from the "
        "headline figures (seconds, or '30s').",
    )
    unit: Literal["msgs", "mbps"] = Field(
        "msgs",
        description="Unit of every rate of the profile: 'msgs' = messages per second, "
        "'mbps' = megabytes (10^6 bytes) per second of encoded frames.",
    )
    max_mbps: float | None = Field(
        None,
        gt=0,
        le=MAX_MBPS,
        description="Optional ceiling in MB/s (10^6 bytes/s) of encoded frames, applied on top "
        "of the profile whatever its unit.",
    )
    producers: int = Field(
        1, ge=1, le=256, description="Number of producer threads sharing the schedule."
    )

    @model_validator(mode="after")
    def _warmup_within_duration(self) -> Self:
        if self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({self.warmup:g} s) must be shorter than duration ({self.duration:g} s)"
            )
        return self

    @model_validator(mode="after")
    def _megabytes_bounded(self) -> Self:
        """A rate in MB/s is bounded tighter than one in messages/s (see MAX_MBPS)."""
        if self.unit != "mbps":
            return self
        too_high = {name: value for name, value in self._rates() if value > MAX_MBPS}
        if too_high:
            name, value = next(iter(too_high.items()))
            raise ValueError(f"{name} {value:g} MB/s is above the {MAX_MBPS:g} MB/s limit")
        return self

    def _rates(self) -> list[tuple[str, float]]:
        """Every rate field of the profile (and of its steps), by name."""
        rates = [(name, value) for name, value in self if name.endswith("rate")]
        steps = getattr(self, "steps", [])
        return rates + [(f"steps.{i}.rate", step.rate) for i, step in enumerate(steps)]


class ConstantLoad(_LoadCommon):
    """The same rate for the whole duration."""

    profile: Literal["constant"] = Field(description="Rate profile: a constant rate.")
    rate: Rate = Field(gt=0, description="Rate, in `unit`.")


class Step(_Strict):
    """One step of a step profile."""

    rate: Rate = Field(ge=0, description="Rate during this step, in `unit` (0 pauses the load).")
    duration: LoadSeconds = Field(description="How long this step lasts (seconds, or '30s').")


class StepLoad(_LoadCommon):
    """Successive constant rates; after the last step the last rate holds until `duration`."""

    profile: Literal["step"] = Field(description="Rate profile: a sequence of constant steps.")
    steps: list[Step] = Field(
        min_length=1,
        description="Steps in order; if they end before `duration`, the last rate holds.",
    )

    @model_validator(mode="after")
    def _some_positive_rate(self) -> Self:
        if not any(step.rate > 0 for step in self.steps):
            raise ValueError("at least one step must have a rate above 0")
        return self


class RampLoad(_LoadCommon):
    """A rate that changes linearly from `start_rate` to `end_rate` over the duration."""

    profile: Literal["ramp"] = Field(description="Rate profile: a linear ramp.")
    start_rate: Rate = Field(ge=0, description="Rate at the start, in `unit`.")
    end_rate: Rate = Field(ge=0, description="Rate at the end of `duration`, in `unit`.")

    @model_validator(mode="after")
    def _not_all_zero(self) -> Self:
        if self.start_rate == 0 and self.end_rate == 0:
            raise ValueError("start_rate and end_rate cannot both be 0")
        return self


class SineLoad(_LoadCommon):
    """mean_rate + amplitude * sin(2 pi t / period)."""

    profile: Literal["sine"] = Field(description="Rate profile: a sine wave around a mean.")
    mean_rate: Rate = Field(gt=0, description="Mean rate, in `unit`.")
    amplitude: Rate = Field(
        ge=0,
        description="Amplitude, in `unit`; at most `mean_rate` so the rate never goes below 0.",
    )
    period: Seconds = Field(description="Period of the wave (seconds, or '5m').")

    @model_validator(mode="after")
    def _amplitude_below_mean(self) -> Self:
        if self.amplitude > self.mean_rate:
            raise ValueError(
                f"amplitude ({self.amplitude:g}) must not exceed mean_rate ({self.mean_rate:g})"
            )
        return self


class DiurnalLoad(_LoadCommon):
    """A day/night curve, compressed into `duration / cycles` seconds per day."""

    profile: Literal["diurnal"] = Field(description="Rate profile: a daily curve.")
    curve: list[Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=lambda: list(DEFAULT_DIURNAL_CURVE),
        min_length=24,
        max_length=24,
        description="24 values, the percent of `peak_rate` at each hour of the day (00:00 first).",
    )
    peak_rate: Rate = Field(gt=0, description="Rate at 100 % of the curve, in `unit`.")
    cycles: float = Field(
        1.0,
        gt=0,
        le=1_000_000,
        description="How many times the 24-hour curve repeats over `duration`.",
    )
    breakpoints: int = Field(
        24,
        ge=1,
        le=10_000,
        description="Number of constant-rate steps per day the curve is interpolated to "
        "(24 = one step per hour; more steps interpolate linearly between hours).",
    )

    @model_validator(mode="after")
    def _curve_not_flat_zero(self) -> Self:
        if not any(value > 0 for value in self.curve):
            raise ValueError("the curve must have at least one value above 0")
        return self

    @model_validator(mode="after")
    def _bounded_steps(self) -> Self:
        if self.cycles * self.breakpoints > 1_000_000:
            raise ValueError("cycles x breakpoints must be at most 1,000,000 steps")
        return self


class PoissonLoad(_LoadCommon):
    """Exponential inter-arrival times (a Poisson process) at a mean rate."""

    profile: Literal["poisson"] = Field(description="Rate profile: Poisson arrivals.")
    rate: Rate = Field(gt=0, description="Mean rate, in `unit`.")
    seed: int = Field(
        0, ge=0, le=2**63 - 1, description="Seed of the inter-arrival times (same seed, same run)."
    )


class TraceLoad(_LoadCommon):
    """Replays a recorded trace from a CSV file."""

    profile: Literal["trace"] = Field(description="Rate profile: replay of a CSV trace.")
    path: Path = Field(
        description="CSV file; a relative path is resolved against the spec file's directory."
    )
    column_kind: Literal["timestamps", "rates"] = Field(
        "timestamps",
        description="'timestamps': one row per message, seconds since the start; "
        "'rates': one row per second, the rate during that second in `unit`.",
    )
    column: str | int = Field(
        0, description="Column to read: its header name, or its 0-based index."
    )

    @model_validator(mode="after")
    def _timestamps_are_messages(self) -> Self:
        if self.column_kind == "timestamps" and self.unit != "msgs":
            raise ValueError("a trace of timestamps counts messages: use unit 'msgs'")
        return self


LoadSpec = Annotated[
    ConstantLoad | StepLoad | RampLoad | SineLoad | DiurnalLoad | PoissonLoad | TraceLoad,
    Field(discriminator="profile"),
]
"""The `load:` section: one of the rate profiles, chosen by `profile`."""
