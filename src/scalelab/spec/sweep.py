"""The `sweep:` section: which spec fields `scalelab sweep` varies, and how often."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scalelab.spec.section import Section


class SweepSpec(Section):
    vary: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Dotted spec field → values to try, e.g. {'workload.workers': [1, 2, 3]}.",
    )
