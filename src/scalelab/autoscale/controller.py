"""One decision per interval: read, decide, clamp, respect the cooldown, act, record.

A rescale is followed until the consumer group shows it (the wanted number of members
holding every partition), or, for an actuator that confirms its own rescales (a Flink
job's parallelism: no consumer group shows it), until the actuator says so; the cooldown
runs from that completion, so a policy never judges a scale whose rebalance is still
going on. An actuator with bounds of its own (a Flink job's slots) clamps the target
further, and the decision's reason says so.

A policy that measures capacity (busy time, CPU) is held for one rate window after the
load starts, as the Flink operator waits for a full metrics window after a job starts:
the window would still hold the workers' start-up, which makes them look busier per
message than they are (seen: DS2 asking for 3 subtasks at 5 frames/s, 3 s in). Starting
a first worker where there is none is never held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from scalelab.autoscale.actuator import Actuator, Bounded, ConfirmsRescale, Progress, Settles
from scalelab.autoscale.decisions import Decision, inputs_json
from scalelab.autoscale.policy import Policy
from scalelab.autoscale.signals import Signals
from scalelab.spec.autoscale import AutoscalerSpec

RESCALE_TIMEOUT_S = 120.0  # a rescale the group never shows is closed after this


@dataclass
class Pending:
    decision: Decision
    started: float  # elapsed seconds at the request


class Controller:
    def __init__(
        self,
        spec: AutoscalerSpec,
        policy: Policy,
        actuator: Actuator,
        group_state: Callable[[], tuple[int, int]],
        partitions: int,
    ):
        self.spec = spec
        self.policy = policy
        self.actuator = actuator
        self.group_state = group_state
        self.partitions = partitions
        self.decisions: list[Decision] = []
        self.pending: Pending | None = None
        self.quiet_until = 0.0  # elapsed seconds before which no new rescale is made
        self.warm_until = spec.window if policy.measures_capacity else 0.0

    def decide(self, signals: Signals) -> Decision:
        want = self.policy.decide(signals)
        target, why = self._clamp(want.replicas)
        reason = f"{want.reason}; {why}" if why else want.reason
        action, reason = self._action(signals, target, reason)
        decision = Decision(
            time_ns=time.time_ns(),
            elapsed_s=round(signals.elapsed, 3),
            policy=self.spec.policy,
            inputs=inputs_json(signals.to_dict()),
            current=signals.current,
            wanted=want.replicas,
            target=target,
            action=action,
            reason=reason,
        )
        self.decisions.append(decision)
        if decision.rescale:
            self._act(decision, signals.elapsed)
        return decision

    def _clamp(self, wanted: int) -> tuple[int, str]:
        """[min, max], then what the actuator can reach (with its reason, if it clamps)."""
        target = min(max(wanted, self.spec.min), self.spec.max)
        if isinstance(self.actuator, Bounded):
            return self.actuator.clamp(target)
        return target, ""

    def _action(self, s: Signals, target: int, reason: str) -> tuple[str, str]:
        if target != s.current and self.pending is not None:
            return "held", f"{reason}; held: the last rescale is not complete"
        if target != s.current and s.elapsed < self.quiet_until:
            return "held", f"{reason}; held: cooldown until {self.quiet_until:.1f} s"
        if target != s.current and s.current > 0 and s.elapsed < self.warm_until:
            return "held", (
                f"{reason}; held: until {self.warm_until:.1f} s the {self.spec.window:g} s "
                "rate window reaches back before the load, into the workers' start-up"
            )
        if target > s.current:
            return "scale-up", reason
        if target < s.current:
            return "scale-down", reason
        return "none", reason

    def _act(self, decision: Decision, elapsed: float) -> None:
        decision.requested_ns = time.time_ns()
        self.actuator.scale_to(decision.target)
        decision.effective_ns = time.time_ns()
        self.pending = Pending(decision, elapsed)

    def follow(self, elapsed: float) -> Decision | None:
        """Close the pending rescale once it shows; returns it when closed."""
        if self.pending is None:
            return None
        decision = self.pending.decision
        progress = self._progress(decision.target)
        if not progress.done and elapsed - self.pending.started < RESCALE_TIMEOUT_S:
            return None
        # The actuator's own times where it knows them (a Flink job's rescale record).
        decision.requested_ns = progress.requested_ns or decision.requested_ns
        decision.effective_ns = progress.effective_ns or decision.effective_ns
        decision.completed_ns = progress.completed_ns or (time.time_ns() if progress.done else None)
        if not progress.done:
            decision.reason += f"; {progress.seen}"
        self.pending = None
        self.quiet_until = elapsed + self.spec.cooldown
        return decision

    def _progress(self, target: int) -> Progress:
        """The actuator's own word where it has one, else the workers' consumer group (once
        the platform shows the new workers in place, where it says when: a Deployment)."""
        if isinstance(self.actuator, ConfirmsRescale):
            return self.actuator.progress(target)
        effective = None
        if isinstance(self.actuator, Settles):
            effective = self.actuator.settled(target)
            if effective is None:
                return Progress(False, f"the platform never showed {target} workers in place")
        members, assigned = self.group_state()
        done = members == target and (target == 0 or assigned >= self.partitions)
        return Progress(
            done, f"the group never showed it ({members} members)", effective_ns=effective
        )
