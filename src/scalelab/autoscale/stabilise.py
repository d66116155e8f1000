"""HPA-style stabilisation: act on the extreme recommendation of a recent window.

Scaling down uses the highest recommendation of the last `down` seconds (so a dip
does not remove a worker the next spike needs); scaling up the lowest of the last
`up` seconds (0: at once).
"""

from __future__ import annotations

from collections import deque


class Stabiliser:
    def __init__(self, up: float, down: float):
        self.up, self.down = up, down
        self.history: deque[tuple[float, int]] = deque()

    def stable(self, elapsed: float, current: int, raw: int) -> int:
        self.history.append((elapsed, raw))
        horizon = max(self.up, self.down)
        while self.history and self.history[0][0] < elapsed - horizon:
            self.history.popleft()
        if raw > current:
            ups = [r for t, r in self.history if t >= elapsed - self.up]
            return max(current, min(ups))
        if raw < current:
            downs = [r for t, r in self.history if t >= elapsed - self.down]
            return min(current, max(downs))
        return current
