"""How the controller changes the scale: `scale_to(n)` and `current()`, nothing else.

`LocalWorkers` starts and stops worker processes through the platform with the same
launch the experiment uses. Names only grow (worker-0, worker-1, …, never reused), so
each process keeps its own log, metrics series and consumer-group member id. Scaling
down stops the newest workers with SIGTERM: each finishes and commits its batch in
its revoke callback, and the group hands its partitions to the others (cooperative
rebalance), so nothing is lost and only uncommitted work is redone.

An actuator may also bound what it can reach (`Bounded.clamp`: a Flink job's slots and
maximum parallelism) and confirm its own rescales (`ConfirmsRescale.progress`: a Flink job
runs at the new parallelism), where the workers' consumer group says nothing. A platform
whose rescales take time to show (a Deployment's pods start or drain) says when they have
(`Settles.settled`); the consumer group still says when the rescale is complete.

A platform may bring its own workers (`OwnWorkers.worker_actuator`: on a cluster, the
replicas of the workers' Deployment); `worker_set` picks it, or `LocalWorkers`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from scalelab.platform.base import ComponentLaunch, Platform

STOP_TIMEOUT_S = 60.0


class Actuator(Protocol):
    def scale_to(self, n: int) -> None: ...

    def current(self) -> int: ...


@runtime_checkable
class Bounded(Protocol):
    def clamp(self, n: int) -> tuple[int, str]:
        """The scale the actuator can reach for `n`, and why it differs ("" when it does not)."""
        ...


@dataclass(frozen=True)
class Progress:
    """How far the last rescale got: done, what is seen now, and the times it knows."""

    done: bool
    seen: str  # for a rescale never confirmed: what the actuator saw instead
    requested_ns: int | None = None
    effective_ns: int | None = None
    completed_ns: int | None = None


@runtime_checkable
class ConfirmsRescale(Protocol):
    def progress(self, target: int) -> Progress:
        """Whether the rescale to `target` requested last is complete."""
        ...


@runtime_checkable
class Settles(Protocol):
    def settled(self, target: int) -> int | None:
        """When (epoch ns) the platform first showed `target` in place after the last
        `scale_to`: new workers ready, removed ones gone; None while it does not."""
        ...


class Workers(Actuator, Protocol):
    """What the run does with its workers besides scaling them: name them (for faults and
    logs), lose one to a fault, stop them all at the end."""

    live: list[str]

    def lost(self, name: str) -> None: ...

    def stop_all(self) -> None: ...


@runtime_checkable
class OwnWorkers(Protocol):
    def worker_actuator(self, launch: Callable[[str], ComponentLaunch]) -> Workers:
        """The platform's own way to start, scale and stop the workers."""
        ...


def worker_set(platform: Platform, launch: Callable[[str], ComponentLaunch]) -> Workers:
    """The platform's workers where it has its own (a cluster's Deployment), else processes."""
    if isinstance(platform, OwnWorkers):
        return platform.worker_actuator(launch)
    return LocalWorkers(platform, launch, [])


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
