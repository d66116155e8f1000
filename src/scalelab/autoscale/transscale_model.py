"""Transscale's throughput model, throughput(p) = α·p^β, fitted online on the sustainable
throughputs seen at each scale (log-log least squares; one point gives β = 1).

Transscale also subtracts γ·delay(p) for the reconfiguration delay; YOLO workers have
no state to move, so γ is 0 here.
"""

from __future__ import annotations

import math


class ThroughputModel:
    def __init__(self) -> None:
        self.best: dict[int, float] = {}  # scale -> highest sustainable throughput seen

    def observe(self, scale: int, throughput: float) -> None:
        if scale > 0 and throughput > 0:
            self.best[scale] = max(throughput, self.best.get(scale, 0.0))

    def fitted(self) -> bool:
        return bool(self.best)

    def params(self) -> tuple[float, float]:
        points = [(math.log(p), math.log(t)) for p, t in self.best.items()]
        if len(points) == 1:
            p, t = next(iter(self.best.items()))
            return t / p, 1.0
        mx = sum(x for x, _ in points) / len(points)
        my = sum(y for _, y in points) / len(points)
        sxx = sum((x - mx) ** 2 for x, _ in points)
        beta = sum((x - mx) * (y - my) for x, y in points) / sxx
        beta = min(max(beta, 0.1), 1.0)  # never superlinear, never flat
        return math.exp(my - beta * mx), beta

    def predict(self, scale: int) -> float:
        alpha, beta = self.params()
        return alpha * scale**beta

    def least_sufficient(self, demand: float, ceiling: int) -> int:
        for scale in range(1, max(1, ceiling) + 1):
            if self.predict(scale) >= demand:
                return scale
        return max(1, ceiling)

    def describe(self) -> str:
        alpha, beta = self.params()
        return f"{alpha:.1f}·p^{beta:.2f}"
