"""The `sweep:` section: which spec fields `scalelab sweep` varies, how often, in which order.

The command line's `--vary` and `--repetitions` add to (and override) what is
written here, so a spec can carry its research question and a user can still
narrow it for a quick look.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from scalelab.spec.section import Section

MAX_CELLS = 10_000
"""Most combinations one sweep may expand to (a typo such as 1..10000 is refused early)."""


class SweepSpec(Section):
    vary: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Dotted spec field → values to try, e.g. {'workload.workers': [1, 2, 3]}; "
        "every combination is one cell of the sweep.",
    )
    repetitions: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Runs per cell (default: the spec's `repetitions`); with 2 or more every "
        "figure gets a 95 % confidence interval.",
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        description="Seed of the random run order (drift over time then does not line up "
        "with a parameter); the same seed gives the same order.",
    )

    @field_validator("vary")
    @classmethod
    def _values_given(cls, vary: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in vary.items():
            if not key or any(not part for part in key.split(".")):
                raise ValueError(f"{key!r} is not a dotted spec field such as load.rate")
            if not values:
                raise ValueError(f"{key}: give at least one value")
        return vary
