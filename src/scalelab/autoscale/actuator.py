"""How the controller changes the scale: `scale_to(n)` and `current()`, nothing else.

`LocalWorkers` starts and stops worker processes through the platform with the same
launch the experiment uses. Names only grow (worker-0, worker-1, …, never reused), so
each process keeps its own log, metrics series and consumer-group member id. Scaling
down stops the newest workers with SIGTERM: each finishes and commits its batch in
its revoke callback, and the group hands its partitions to the others (cooperative
rebalance), so nothing is lost and only uncommitted work is redone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from scalelab.platform.base import ComponentLaunch, Platform

STOP_TIMEOUT_S = 60.0


class Actuator(Protocol):
    def scale_to(self, n: int) -> None: ...

    def current(self) -> int: ...


class LocalWorkers:
    def __init__(
        self,
        platform: Platform,
        launch: Callable[[str], ComponentLaunch],
        running: list[str],
        prefix: str = "worker",
    ):
        self.platform = platform
        self.launch = launch
        self.prefix = prefix
        self.live = list(running)  # in start order: the newest is stopped first
        self.started = list(running)  # every name ever used

    def current(self) -> int:
        return len(self.live)

    def scale_to(self, n: int) -> None:
        while len(self.live) < n:
            name = f"{self.prefix}-{len(self.started)}"
            self.platform.start_component(self.launch(name))
            self.live.append(name)
            self.started.append(name)
        while len(self.live) > n:
            self.platform.stop_component(self.live.pop(), timeout=STOP_TIMEOUT_S)

    def lost(self, name: str) -> None:
        """A worker died (a kill-worker fault): it no longer counts; its name is not reused."""
        if name in self.live:
            self.live.remove(name)

    def stop_all(self) -> None:
        self.scale_to(0)
