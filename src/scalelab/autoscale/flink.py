"""A Flink job's parallelism as the autoscaler's scale.

`FlinkParallelism` rescales through the job's own rescale path (`FlinkJob.rescale`, the
one a parallelism schedule uses: the adaptive scheduler's resource requirements, or
stop-with-savepoint and resubmit), so every rescale it asks for is also in `run.json`'s
Flink rescales with its request, effective and completion times. It never exceeds the
slots (taskmanagers × slots per TaskManager: the adaptive scheduler would run the job
lower without saying so and the rescale would never complete) nor the maximum
parallelism, and it confirms its own rescales: a Flink source is not a member of the
consumer group, so the group cannot show them. A rescale is effective when the job runs
at the new parallelism with every task RUNNING and complete at the first checkpoint after
that (the new tasks processed and committed), as `FlinkJob.poll`, which the orchestrator
calls on every tick, records them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scalelab.autoscale.actuator import Progress


class RescaleRecord(Protocol):
    target: int
    requested_ns: int
    effective_ns: int | None
    completed_ns: int | None


class RescalableJob(Protocol):
    parallelism: int

    def rescale(self, target: int, check: Callable[[], None] | None = None) -> RescaleRecord: ...


@dataclass(frozen=True)
class Slots:
    """What bounds a rescale: the job's maximum parallelism and the cluster's task slots."""

    max_parallelism: int
    taskmanagers: int
    per_taskmanager: int

    @property
    def total(self) -> int:
        return self.taskmanagers * self.per_taskmanager

    def clamp(self, n: int) -> tuple[int, str]:
        if n < 1:
            return 1, "clamped to 1: a Flink job runs at parallelism 1 or more"
        ceiling = min(self.total, self.max_parallelism)
        if n <= ceiling:
            return n, ""
        if self.total <= self.max_parallelism:
            why = (
                f"the available slots ({self.taskmanagers} taskmanagers × "
                f"{self.per_taskmanager} slots)"
            )
        else:
            why = f"workload.max_parallelism ({self.max_parallelism})"
        return ceiling, f"parallelism {n} clamped to {ceiling}: {why}"


def rescale_progress(change: RescaleRecord | None, target: int) -> Progress:
    """How far the rescale to `target` got, from its record (no record: nothing to wait for)."""
    if change is None or change.target != target:
        return Progress(True, "no rescale of this job was requested")
    times = dict(
        requested_ns=change.requested_ns,
        effective_ns=change.effective_ns,
        completed_ns=change.completed_ns,
    )
    if change.completed_ns is not None:
        return Progress(True, f"the job runs at parallelism {target}", **times)
    if change.effective_ns is not None:
        seen = f"the job ran at parallelism {target}, but no checkpoint completed since"
    else:
        seen = f"the job never ran at parallelism {target} with every task RUNNING"
    return Progress(False, seen, **times)


class FlinkParallelism:
    unit = "parallelism"

    def __init__(self, job: RescalableJob, slots: Slots, check: Callable[[], None] | None = None):
        self.job = job
        self.slots = slots
        self.check = check
        self.last: RescaleRecord | None = None

    def current(self) -> int:
        return self.job.parallelism

    def clamp(self, n: int) -> tuple[int, str]:
        return self.slots.clamp(n)

    def scale_to(self, n: int) -> None:
        target, _ = self.clamp(n)
        if target != self.job.parallelism:
            self.last = self.job.rescale(target, check=self.check)

    def progress(self, target: int) -> Progress:
        return rescale_progress(self.last, target)
