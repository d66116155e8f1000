"""The autoscaler as a run component: the orchestrator's whole integration surface.

    scaler = Autoscaler(spec, sources, actuator, record_event, out_dir)
    scaler.tick()            # from the orchestrator's loop (same thread as the platform)
    scaler.start() / stop()  # or in its own thread, where the actuator is thread-safe
    scaler.close()           # writes decisions.parquet; scaler.summary() for summary.json

`tick()` is cheap when no decision is due; the local platform's process table is not
thread-safe, so the local orchestrator calls `tick()` rather than `start()`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry

from scalelab.autoscale.actuator import Actuator
from scalelab.autoscale.controller import Controller
from scalelab.autoscale.decisions import Decision, write_decisions
from scalelab.autoscale.kafka_probe import KafkaProbe
from scalelab.autoscale.metrics import AutoscalerMetrics
from scalelab.autoscale.policy import make_policy
from scalelab.autoscale.prom import PromReader
from scalelab.autoscale.signals import Signals
from scalelab.autoscale.summary import autoscale_summary
from scalelab.errors import ScalelabError
from scalelab.spec.autoscale import AutoscalerSpec

RecordEvent = Callable[[str, str], None]
FOLLOW_S = 0.5


@dataclass
class Sources:
    """Where the inputs come from: the run's Prometheus and the workers' group on the broker."""

    prometheus_url: str
    run_id: str
    bootstrap: str
    group: str
    topic: str
    partitions: int
    components: str = "worker-.*"
    more_topics: tuple[str, ...] = ()  # a job reading several inputs (the Flink join)
    worker_selector: str | None = None  # the workers' series where the platform names them
    worker_key: str = "component"  # otherwise than locally (a cluster: `WorkerSeries`)


@runtime_checkable
class WorkerSeries(Protocol):
    """A platform whose workers' Prometheus series are labelled otherwise than locally."""

    def worker_series(self) -> tuple[str, str]:
        """The workers' label selector and the label that tells them apart."""
        ...


class Readings(Protocol):
    """Where the Prometheus inputs come from: the workers (`PromReader`) or a Flink job."""

    def readings(self) -> dict[str, object]: ...

    def close(self) -> None: ...


class Autoscaler:
    def __init__(
        self,
        spec: AutoscalerSpec,
        sources: Sources,
        actuator: Actuator,
        record_event: RecordEvent,
        out_dir: Path,
        registry: CollectorRegistry | None = None,
        readings: Readings | None = None,
    ):
        self.spec = spec
        self.actuator = actuator
        self.unit: str | None = getattr(actuator, "unit", None)  # "parallelism" for Flink
        self.record_event = record_event
        self.out_dir = out_dir
        self.prom: Readings = readings or PromReader(
            sources.prometheus_url,
            sources.run_id,
            spec.window,
            sources.components,
            sources.worker_selector,
            sources.worker_key,
        )
        self.kafka = KafkaProbe(
            sources.bootstrap, sources.group, sources.topic, sources.more_topics
        )
        self.controller = Controller(
            spec, make_policy(spec), actuator, self.kafka.group_state, sources.partitions
        )
        self.metrics = AutoscalerMetrics(registry or CollectorRegistry(), spec.policy)
        self.t0 = time.monotonic()
        self.next_decision = 0.0
        self.next_follow = 0.0
        self.timeline: list[tuple[float, int]] = [(0.0, actuator.current())]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def decisions(self) -> list[Decision]:
        return self.controller.decisions

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def tick(self) -> Decision | None:
        """Follow a pending rescale, and decide when the interval has passed."""
        now = self.elapsed()
        if now >= self.next_follow:
            self.next_follow = now + FOLLOW_S
            self._follow(now)
        if now < self.next_decision:
            return None
        self.next_decision = now + self.spec.interval
        decision = self.controller.decide(self.read(now))
        self.metrics.decided(decision)
        if decision.rescale:
            self.timeline.append((self.elapsed(), self.actuator.current()))
            self.metrics.scaled(self.actuator.current())
            self.record_event(
                f"autoscaler-{decision.action}",
                f"{self._scale(decision.current, decision.target)} at "
                f"{decision.elapsed_s:.1f} s: {decision.reason}",
            )
        return decision

    def _follow(self, now: float) -> None:
        closed = self.controller.follow(now)
        if closed is None or closed.requested_ns is None:
            return
        end = closed.completed_ns or time.time_ns()
        seconds = (end - closed.requested_ns) / 1e9
        self.metrics.completed(seconds)
        how = "complete" if closed.completed_ns else "not confirmed"
        self.record_event(
            "autoscaler-rescale-completed",
            f"{self._scale(closed.current, closed.target)} {how} after {seconds:.2f} s",
        )

    def _scale(self, current: int, target: int) -> str:
        what = f"{self.unit} " if self.unit else ""
        return f"{self.spec.policy}: {what}{current} → {target}"

    def read(self, elapsed: float) -> Signals:
        arrival, lag = self.kafka.read()
        try:
            prom = self.prom.readings()
        except ScalelabError:
            prom = {}
        return Signals(
            elapsed=elapsed,
            current=self.actuator.current(),
            arrival_rate=arrival,
            lag=lag,
            **prom,  # type: ignore[arg-type]
        )

    # -- thread mode ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="autoscaler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(0.2):
                self.tick()
        except BaseException as error:  # noqa: BLE001 - kept for the orchestrator to raise
            self.error = error

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    # -- results --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop, write decisions.parquet and autoscaler.json, close the clients."""
        self.stop()
        self.timeline.append((self.elapsed(), self.actuator.current()))
        try:
            write_decisions(self.out_dir / "decisions.parquet", self.decisions)
            summary = self.summary()
            (self.out_dir / "autoscaler.json").write_text(json.dumps(summary, indent=2))
        finally:
            self.prom.close()
            self.kafka.close()

    def summary(self) -> dict[str, object]:
        summary = autoscale_summary(self.spec.policy, self.decisions, self.timeline)
        if self.unit:  # replica_seconds and max_replicas count this (parallelism-seconds)
            summary["scale_unit"] = self.unit
        return summary
