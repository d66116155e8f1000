"""The `autoscaler:` spec section: which policy scales the workers, within which bounds, how often.

One flat section: the policy picks the knobs it reads (HPA's utilisation target and
stabilisation windows, DS2's catch-up time, the thresholds, the schedule's steps);
the others keep their defaults. Kept beside the section base, not in `models.py`,
so the autoscaler package and the spec share it without importing the whole spec.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from scalelab.spec.section import Section
from scalelab.spec.types import Duration

POLICIES = ("hpa", "ds2", "transscale", "threshold", "schedule")
DAY = 86_400.0
Span = Annotated[float, Duration(maximum=DAY)]  # seconds or "15s"
SpanOrZero = Annotated[float, Duration(maximum=DAY, allow_zero=True)]


class ScaleStep(Section):
    """A fixed change of the schedule policy: `replicas` from `at` seconds into the load."""

    at: SpanOrZero = Field(description="Seconds after the autoscaler starts.")
    replicas: int = Field(ge=0, le=256, description="Replicas from then on.")


class AutoscalerSpec(Section):
    """Scale the workers during the run with a named policy; every decision is recorded."""

    policy: Literal["hpa", "ds2", "transscale", "threshold", "schedule"] = Field(
        description="'hpa': desired = ceil(current × utilisation ÷ target) on worker CPU, with "
        "stabilisation windows; 'ds2': true rate per worker from busy time, target = arrival + "
        "lag ÷ catch-up; 'transscale': back-pressure twice above its threshold scales up by "
        "one, at or below it scales down to the least replicas its fitted model says suffice; "
        "'threshold': lag/latency thresholds; 'schedule': fixed changes at given times."
    )
    min: int = Field(1, ge=0, le=256, description="Fewest replicas.")
    max: int = Field(4, ge=1, le=256, description="Most replicas.")
    interval: Span = Field(5.0, description="Seconds between decisions.")
    cooldown: SpanOrZero = Field(
        10.0, description="Seconds after a rescale completes before the next."
    )
    window: Span = Field(15.0, description="Range of the Prometheus rate() the inputs use.")
    target_utilisation: float = Field(
        0.7, gt=0, le=1, description="CPU (hpa) or busy-time (ds2, transscale) target."
    )
    tolerance: float = Field(
        0.1, ge=0, lt=1, description="hpa: a usage ratio within 1 ± tolerance changes nothing."
    )
    stabilisation_up: SpanOrZero = Field(
        0.0, description="hpa/ds2: scale up to the least wanted in this window."
    )
    stabilisation_down: SpanOrZero = Field(
        60.0, description="Scale down only to the most wanted in this window."
    )
    cpu_per_worker: float = Field(
        1.0, gt=0, le=256, description="hpa: the CPU request a worker's usage is measured against."
    )
    catch_up: Span = Field(30.0, description="ds2: seconds in which the lag must be worked off.")
    backpressure: float = Field(
        0.5, gt=0, le=1, description="transscale: busy fraction counted as back-pressure."
    )
    lag_high: int | None = Field(
        None, ge=0, le=10**12, description="threshold: scale up above this lag."
    )
    lag_low: int | None = Field(
        None, ge=0, le=10**12, description="threshold: scale down below this lag."
    )
    latency_high: float | None = Field(
        None, gt=0, le=DAY, description="threshold: scale up above this p95 latency (s)."
    )
    latency_low: float | None = Field(
        None, gt=0, le=DAY, description="threshold: scale down below this p95 latency (s)."
    )
    step: int = Field(1, ge=1, le=64, description="threshold: replicas added or removed at once.")
    steps: list[ScaleStep] = Field(
        default_factory=list, description="schedule: the fixed changes, in time order."
    )

    @model_validator(mode="after")
    def _coherent(self) -> AutoscalerSpec:
        if self.min > self.max:
            raise ValueError(f"autoscaler.min ({self.min}) is above max ({self.max})")
        if self.policy == "schedule" and not self.steps:
            raise ValueError("policy 'schedule' needs steps: [{at, replicas}, ...]")
        if self.policy == "threshold" and self.lag_high is None and self.latency_high is None:
            raise ValueError("policy 'threshold' needs lag_high or latency_high")
        return self


PolicyName = Literal["hpa", "ds2", "transscale", "threshold", "schedule"]
