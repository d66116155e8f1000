"""One decision per interval: read, decide, clamp, respect the cooldown, act, record.

A rescale is followed until the consumer group shows it (the wanted number of members
holding every partition); the cooldown runs from that completion, so a policy never
judges a scale whose rebalance is still going on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from scalelab.autoscale.actuator import Actuator
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

    def decide(self, signals: Signals) -> Decision:
        want = self.policy.decide(signals)
        target = min(max(want.replicas, self.spec.min), self.spec.max)
        action, reason = self._action(signals, target, want.reason)
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

    def _action(self, s: Signals, target: int, reason: str) -> tuple[str, str]:
        if target != s.current and self.pending is not None:
            return "held", f"{reason}; held: the last rescale is not complete"
        if target != s.current and s.elapsed < self.quiet_until:
            return "held", f"{reason}; held: cooldown until {self.quiet_until:.1f} s"
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
        """Close the pending rescale once the group shows it; returns it when closed."""
        if self.pending is None:
            return None
        decision = self.pending.decision
        members, assigned = self.group_state()
        done = members == decision.target and (decision.target == 0 or assigned >= self.partitions)
        if not done and elapsed - self.pending.started < RESCALE_TIMEOUT_S:
            return None
        if done:
            decision.completed_ns = time.time_ns()
        else:
            decision.reason += f"; the group never showed it ({members} members)"
        self.pending = None
        self.quiet_until = elapsed + self.spec.cooldown
        return decision
