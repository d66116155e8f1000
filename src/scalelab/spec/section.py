"""The base of every spec section, in its own module so that section models kept
beside the features they configure (sweeps, Flink, autoscalers) can share it
without importing the whole spec."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every spec section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
