"""`policy: hpa` on a cluster: Kubernetes' own HPA decides and scales; this records what it did.

No controller runs in scalelab then (two would fight over the replicas). Instead, every
`interval` the cluster's HPA is read through the platform (`WatchesHpa.hpa_status`): each of
its `SuccessfulRescale` events becomes a rescale row of `decisions.parquet` (the event's time
as the request, old and new size, its reason text), and its status becomes a `none` row (the
CPU it saw, current and desired replicas), so the table has the local columns and the
scorecard puts a cluster HPA run beside local ones. A rescale is effective when the
Deployment has that many ready pods and complete when the consumer group shows that many
members holding every partition, as locally.

Same surface as `Autoscaler`: `tick()`, `close()`, `summary()`, `decisions`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from scalelab.autoscale.decisions import Decision, inputs_json, write_decisions
from scalelab.autoscale.kafka_probe import KafkaProbe
from scalelab.autoscale.service import RecordEvent, Sources
from scalelab.autoscale.summary import autoscale_summary
from scalelab.spec.autoscale import AutoscalerSpec

RESCALE_TIMEOUT_S = 120.0
READ_S = 1.0  # the HPA's events and the pods are read this often; a `none` row every interval


@dataclass(frozen=True)
class HpaRescale:
    """One `SuccessfulRescale` event of the HPA."""

    time_ns: int
    new: int
    reason: str  # the HPA's own words ("cpu resource utilization ... above target")


@dataclass(frozen=True)
class HpaStatus:
    """The HPA's status now, the Deployment's ready pods, and the rescales not seen before."""

    current: int
    desired: int
    ready: int
    cpu_percent: float | None  # average CPU of the pods, percent of their request
    target_percent: int
    rescales: tuple[HpaRescale, ...] = ()


@runtime_checkable
class WatchesHpa(Protocol):
    def hpa_status(self) -> HpaStatus | None:
        """None while the HPA does not exist (yet)."""
        ...


class ClusterHpa:
    def __init__(
        self,
        spec: AutoscalerSpec,
        sources: Sources,
        hpa: WatchesHpa,
        record_event: RecordEvent,
        out_dir: Path,
        initial: int,
        on_rescale: Callable[[int], None] | None = None,  # the scale the HPA set, each read
    ):
        self.spec = spec
        self.hpa = hpa
        self.record_event = record_event
        self.out_dir = out_dir
        self.on_rescale = on_rescale or (lambda n: None)
        self.kafka = KafkaProbe(sources.bootstrap, sources.group, sources.topic)
        self.partitions = sources.partitions
        self.size = initial  # the scale the HPA set last
        self.decisions: list[Decision] = []
        self.pending: list[Decision] = []  # rescales not complete yet
        self.t0, self.t0_ns = time.monotonic(), time.time_ns()
        self.next_read = 0.0
        self.next_row = 0.0
        self.timeline: list[tuple[float, int]] = [(0.0, initial)]
        self.inputs = "{}"  # what the last read saw, as JSON

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def tick(self) -> Decision | None:
        """Read the HPA every READ_S (its rescales, the pending one's progress); every
        `interval` also its status as a `none` row."""
        now = self.elapsed()
        if now < self.next_read:
            return None
        self.next_read = now + READ_S
        status = self.hpa.hpa_status()
        if status is None:
            return None
        if status.rescales or now >= self.next_row:
            self.inputs = inputs_json(_inputs(status, *self.kafka.read()))
        for rescale in status.rescales:
            self._rescaled(rescale, self.inputs)
        self.on_rescale(self.size)  # the workers' names follow what the HPA did
        self._follow(status)
        if now < self.next_row:
            return None
        self.next_row = now + self.spec.interval
        return self._status_row(now, status)

    def _status_row(self, now: float, status: HpaStatus) -> Decision:
        row = Decision(
            time_ns=time.time_ns(),
            elapsed_s=round(now, 3),
            policy=self.spec.policy,
            inputs=self.inputs,
            current=self.size,
            wanted=status.desired,
            target=status.desired,
            action="none",
            reason=f"cluster HPA: CPU {_percent(status.cpu_percent)} of request "
            f"(target {status.target_percent} %), {status.current} pods, desired {status.desired}",
        )
        self.decisions.append(row)
        return row

    def _rescaled(self, rescale: HpaRescale, inputs: str) -> None:
        for earlier in self.pending:  # superseded before it completed
            earlier.reason += "; superseded by the next rescale before it completed"
        self.pending.clear()
        elapsed = max(0.0, (rescale.time_ns - self.t0_ns) / 1e9)
        action = "scale-up" if rescale.new > self.size else "scale-down"
        decision = Decision(
            time_ns=rescale.time_ns,
            elapsed_s=round(elapsed, 3),
            policy=self.spec.policy,
            inputs=inputs,
            current=self.size,
            wanted=rescale.new,
            target=rescale.new,
            action=action,
            reason=f"cluster HPA: {rescale.reason}",
            requested_ns=rescale.time_ns,
        )
        self.decisions.append(decision)
        self.pending.append(decision)
        self.record_event(
            f"autoscaler-{action}",
            f"hpa (cluster): {self.size} → {rescale.new} at {elapsed:.1f} s: {rescale.reason}",
        )
        self.size = rescale.new
        self.timeline.append((elapsed, rescale.new))

    def _follow(self, status: HpaStatus) -> None:
        """Effective: that many ready pods; complete: the group shows them with every partition."""
        for decision in self.pending[:]:
            now_ns = time.time_ns()
            if decision.effective_ns is None and status.ready == decision.target:
                decision.effective_ns = now_ns
            members, assigned = self.kafka.group_state()
            shown = members == decision.target and assigned >= self.partitions
            if decision.effective_ns is not None and shown:
                decision.completed_ns = now_ns
            late = (now_ns - (decision.requested_ns or now_ns)) / 1e9 > RESCALE_TIMEOUT_S
            if decision.completed_ns is None and not late:
                continue
            self.pending.remove(decision)
            self._closed(decision, members)

    def _closed(self, decision: Decision, members: int) -> None:
        requested = decision.requested_ns or 0
        if decision.completed_ns is None:
            decision.reason += f"; the group never showed it ({members} members)"
            how, end = "not confirmed", time.time_ns()
        else:
            how, end = "complete", decision.completed_ns
        self.record_event(
            "autoscaler-rescale-completed",
            f"hpa (cluster): {decision.current} → {decision.target} {how} after "
            f"{(end - requested) / 1e9:.2f} s",
        )

    def close(self) -> None:
        """Write decisions.parquet and autoscaler.json; close the Kafka clients."""
        try:
            self.timeline.append((self.elapsed(), self.size))
            ordered = sorted(self.decisions, key=lambda d: d.time_ns)
            write_decisions(self.out_dir / "decisions.parquet", ordered)
            summary = self.summary()
            (self.out_dir / "autoscaler.json").write_text(json.dumps(summary, indent=2))
        finally:
            self.kafka.close()

    def summary(self) -> dict[str, object]:
        ordered = sorted(self.decisions, key=lambda d: d.time_ns)
        return {
            **autoscale_summary(self.spec.policy, ordered, self.timeline),
            "decided_by": "kubernetes-hpa",
        }


def _inputs(status: HpaStatus, arrival: float, lag: float) -> dict[str, object]:
    return {
        "cpu_percent": status.cpu_percent,
        "target_percent": status.target_percent,
        "current_replicas": status.current,
        "desired_replicas": status.desired,
        "ready_replicas": status.ready,
        "arrival_rate": None if arrival != arrival else round(arrival, 3),
        "lag": None if lag != lag else lag,
    }


def _percent(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g} %"
