"""What a policy reads at each decision: one snapshot of the load and the workers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Signals:
    """Rates in messages/s (Prometheus `rate()` of counters, Kafka offsets for arrival and lag).

    `busy` is each live worker's busy fraction (busy seconds per second), clamped to 1:
    at load edges a batch that started before the window makes it exceed 1.
    `cpu` is each live worker's CPU use in cores. NaN where nothing was measured yet.
    """

    elapsed: float
    current: int
    arrival_rate: float = math.nan
    processed_rate: float = math.nan
    lag: float = math.nan
    latency_p95: float = math.nan
    busy: tuple[float, ...] = ()
    cpu: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, object]:
        row = asdict(self)
        row["busy"] = list(self.busy)
        row["cpu"] = list(self.cpu)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def known(value: float) -> bool:
    return not math.isnan(value)
