"""`scalelab run`: stack up, topics, tracker and workers, open-loop load, drain, account.

The phases follow the run record: setup (infrastructure, topics, components
until the consumer group holds every partition), warmup and load (the
producer's schedule), cooldown (drain until the consumer lag is zero or the
drain timeout passes), teardown. Summary and accounting are written before
teardown so a failing accounting still leaves every file behind.

The experiment owns the run's Kafka clients (an admin client and an offset
reader) and closes them when `execute()` ends, on every path (success,
exception, Ctrl-C), so that none is left to be destroyed after the broker
stops. A Kafka call that fails names the broker, and a broker that died is
named as such (`ComponentError("broker", ...)`), never a raw KafkaException.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
from rich.console import Console

from scalelab.analysis.scorecard import ceilings, violation_seconds
from scalelab.analysis.summary import read_qos, summarise
from scalelab.autoscale.actuator import worker_set
from scalelab.autoscale.cluster_hpa import ClusterHpa, WatchesHpa
from scalelab.autoscale.flink import FlinkParallelism, Slots
from scalelab.autoscale.flink_prom import FlinkReader
from scalelab.autoscale.service import Autoscaler, Sources, WorkerSeries
from scalelab.autoscale.summary import run_figures
from scalelab.chaos.injectors import Target
from scalelab.chaos.local import local_target
from scalelab.chaos.schedule import ChaosSchedule
from scalelab.components.producer import START_FILE
from scalelab.errors import ComponentError, ScalelabError
from scalelab.platform.base import ComponentLaunch, Endpoints
from scalelab.platform.local.flink_job import FlinkJob, JobContext, Rescale, flink_figures
from scalelab.platform.local.flink_rest import FlinkRest
from scalelab.platform.local.platform import LocalPlatform
from scalelab.run import kafka_ops
from scalelab.run.accounting import (
    Accounting,
    account,
    of_run,
    produced_since,
    unprocessed_in_tail,
)
from scalelab.run.progress import LiveView
from scalelab.run.record import Phase, rfc3339
from scalelab.run.resources import CpuSampler
from scalelab.run.session import RunSession
from scalelab.spec.models import FlinkWorkload

GROUP_READY_TIMEOUT = 120.0
PRODUCER_READY_TIMEOUT = 120.0
TICK_S = 0.5
TAIL_READ_LIMIT = (
    20_000  # tail messages read back for their keys; a larger tail is placed by offset
)


@dataclass
class Observations:
    """What the orchestrator sees while the run goes on."""

    lag_samples: list[tuple[float, int]] = field(default_factory=list)
    cpu: CpuSampler = field(default_factory=CpuSampler)
    cpu_counts_load: bool = False


@runtime_checkable
class TaskManagerKiller(Protocol):
    """A platform that runs Flink TaskManagers it can kill (and replace)."""

    def kill_taskmanager(self, index: int) -> tuple[str, str]: ...


class Experiment:
    def __init__(
        self,
        session: RunSession,
        endpoints: Endpoints,
        model: str,
        console: Console,
        view: LiveView | None = None,
    ):
        self.session = session
        self.spec = session.spec
        self.record = session.record
        self.platform = session.platform
        self.endpoints = endpoints
        self.model = model
        self.console = console
        self.view = view or LiveView(console, session.spec.load.duration)
        self.seen = Observations()
        self.pending_faults = sorted(self.spec.faults, key=lambda fault: fault.at)
        self.group = f"scalelab-workers-{session.id}"
        self.start_offsets: dict[str, dict[int, int]] = {}
        self.dead_letter_ids: list[str] = []
        self.admin = kafka_ops.admin(endpoints.bootstrap)
        try:
            self.offsets = kafka_ops.OffsetReader(endpoints.bootstrap, self.group)
        except BaseException:
            self.admin.close()
            raise
        self.members = kafka_ops.GroupWatch(self.admin, self.group)
        self.flink: FlinkJob | None = None
        self.workers = worker_set(self.platform, self._worker_launch)  # a cluster's: its own
        self.autoscaler: Autoscaler | ClusterHpa | None = None
        self.chaos: ChaosSchedule | None = None
        wl = self.spec.workload
        duration = self.spec.load.duration
        self.pending_steps = wl.planned_steps(duration) if isinstance(wl, FlinkWorkload) else []
        self.join = isinstance(wl, FlinkWorkload) and wl.job == "join"
        self.inputs = [self.spec.broker.input_topic]  # the join reads a second stream
        if isinstance(wl, FlinkWorkload) and self.join:
            self.inputs.append(wl.join.second_topic)

    def close(self) -> None:
        """Close every Kafka client now, while the broker still runs (idempotent).

        The clients live only in these two objects, so frames of a traceback that
        outlive the run hold closed shells, not native clients.
        """
        closed = {"offset reader": False, "admin client": False}
        self._stop_control()  # its own Kafka clients, closed while the broker runs
        try:
            closed["offset reader"] = self.offsets.close()
        finally:
            closed["admin client"] = self.admin.close()
            if self.flink is not None:
                self.flink.rest.close()
        for name in (n for n, ok in closed.items() if not ok):
            self.record.warnings.append(
                f"Kafka {name} did not close within {kafka_ops.CLOSE_TIMEOUT_S:g} s "
                "(the broker was gone); left to the process exit"
            )

    def execute(self) -> None:
        """Run the phases; the Kafka clients are closed when this returns or raises."""
        try:
            self._phases()
        except kafka_ops.BrokerError as error:
            self._blame_dead_component(error)
            raise
        finally:
            self.close()

    def _phases(self) -> None:
        with self.record.phase("deploy", self.session.save):
            self.view.phase("deploy", "topics, tracker, workers")
            self._deploy()
        start_ns = self._start_producer()
        self._watch_load(start_ns)
        with self.record.phase("cooldown", self.session.save):
            self.view.phase("drain", "until the consumer lag is 0")
            self._drain(start_ns)
            self.view.phase("stop", "workers finish their batch, the tracker reads to the end")
            self._stop_data_plane()
        self.view.phase("accounting", "produced = processed + dead-lettered + queued")
        self._finish()

    def _blame_dead_component(self, error: kafka_ops.BrokerError) -> None:
        """A Kafka call failed: if the broker (or another component) died, say so instead."""
        try:
            self.platform.check_health()
        except ComponentError as dead:
            raise dead from error

    # -- setup ----------------------------------------------------------------------------
    def _deploy(self) -> None:
        broker = self.spec.broker
        kafka_ops.create_topics(self.admin, broker, broker.partitions, self.inputs[1:])
        self.view.step(f"topics: {broker.partitions} partitions")
        self._commit_start_offsets()
        self.platform.start_component(self._launch("tracker", "tracker", "tracker"))
        if isinstance(self.spec.workload, FlinkWorkload):
            self._submit_flink_job(self.spec.workload)
        else:
            self.workers.scale_to(self._initial_workers())
            self._wait_group_ready(self.workers.current())
        self.platform.wait_scraped(60)

    def _worker_launch(self, name: str) -> ComponentLaunch:
        """Every worker, first or added by the autoscaler, is launched the same way; names
        only grow (worker-0, worker-1, ...), never reused."""
        return self._launch(name, "worker", "worker", ["--name", name, "--model", self.model])

    def _initial_workers(self) -> int:
        workers = getattr(self.spec.workload, "workers", 0)
        scaler = self.spec.autoscaler
        return workers if scaler is None else min(max(workers, scaler.min), scaler.max)

    def _start_control(self) -> None:
        """At the load's start: the autoscaler and the chaos schedule (their clocks start here,
        as the faults' `at` does). A fault the platform cannot inject fails here, named."""
        record = self._control_event
        if self.spec.autoscaler is not None:
            broker = self.spec.broker
            sources = Sources(
                self.endpoints.prometheus_url,
                self.session.id,
                self.endpoints.bootstrap,
                self.group,
                broker.input_topic,
                broker.partitions,
                more_topics=tuple(self.inputs[1:]),
            )
            if isinstance(self.platform, WorkerSeries):  # a cluster labels its pods otherwise
                selector, key = self.platform.worker_series()
                sources = replace(sources, worker_selector=selector, worker_key=key)
            if isinstance(self.spec.workload, FlinkWorkload):
                self.autoscaler = self._flink_autoscaler(self.spec.workload, sources)
            elif self.spec.autoscaler.policy == "hpa" and isinstance(self.platform, WatchesHpa):
                self.autoscaler = self._cluster_hpa(sources)
            else:
                self.autoscaler = Autoscaler(
                    self.spec.autoscaler, sources, self.workers, record, self.session.dir
                )
        if self.spec.chaos:
            target = Target()
            if isinstance(self.platform, LocalPlatform):
                target = local_target(
                    self.platform,
                    lambda: self.workers.live,
                    self.spec.broker.output_topic,
                    self.endpoints.bootstrap,
                    proxy=getattr(self.platform, "proxy", None),
                )
            elif self.platform.name == "kubernetes":  # its module imports no client
                from scalelab.platform.kubernetes.chaos import kubernetes_target

                target = kubernetes_target(
                    self.platform,
                    lambda: self.workers.live,
                    self.spec.broker.output_topic,
                    self.endpoints.bootstrap,
                )
            self.chaos = ChaosSchedule(self.spec.chaos, target, record)

    def _flink_autoscaler(self, workload: FlinkWorkload, sources: Sources) -> Autoscaler:
        """The job's parallelism as the scale: rescaled through the job's own rescale path
        (as a parallelism schedule is), its inputs from Flink's counters in Prometheus."""
        assert self.spec.autoscaler is not None
        if self.flink is None:
            raise ComponentError("autoscaler", "no Flink job is running to scale")
        if self.pending_steps:
            raise ComponentError(
                "autoscaler",
                "the workload's parallelism schedule (or strategy) and the autoscaler would "
                "both rescale the job: give one",
            )
        slots = Slots(
            workload.max_parallelism, workload.taskmanagers, workload.slots_per_taskmanager
        )
        actuator = FlinkParallelism(self.flink, slots, check=self.platform.check_health)
        readings = FlinkReader(sources.prometheus_url, sources.run_id, self.spec.autoscaler.window)
        return Autoscaler(
            self.spec.autoscaler,
            sources,
            actuator,
            self._control_event,
            self.session.dir,
            readings=readings,
        )

    def _cluster_hpa(self, sources: Sources) -> ClusterHpa:
        """`policy: hpa` on a cluster: its own HPA scales; its rescales are recorded as decisions
        and the workers' names follow them."""
        assert self.spec.autoscaler is not None
        follow = getattr(self.workers, "follow", None)
        return ClusterHpa(
            self.spec.autoscaler,
            sources,
            self.platform,  # type: ignore[arg-type]  # WatchesHpa, checked by the caller
            self._control_event,
            self.session.dir,
            self.workers.current(),
            on_rescale=follow,
        )

    def _control_event(self, kind: str, detail: str) -> None:
        component = "autoscaler" if kind.startswith("autoscaler") else "chaos"
        self.record.add_event(kind, detail, component=component)

    def _tick_control(self, elapsed: float) -> None:
        if self.chaos is not None:
            self.chaos.tick(elapsed)
        if self.autoscaler is not None:
            self.autoscaler.tick()

    def _stop_control(self) -> None:
        """End every active fault (no worker left paused), stop the autoscaler and write its
        decisions.parquet and autoscaler.json (idempotent)."""
        chaos, self.chaos = self.chaos, None
        scaler, self.autoscaler = self.autoscaler, None
        try:
            if chaos is not None:
                chaos.close()
                self.record.results["chaos"] = chaos.to_list()
        finally:
            if scaler is not None:
                scaler.close()
                self.record.results["autoscaler"] = scaler.summary()
                self.record.results["decisions"] = "decisions.parquet"

    def _submit_flink_job(self, workload: FlinkWorkload) -> None:
        """Submit the job over REST and wait until it runs for real (every task running,
        a first checkpoint done: the source holds its partitions and committed offsets).
        A bad jar, entry class or argument fails here, before any load is sent."""
        broker = self.spec.broker
        url = self.endpoints.extra.get("flink")
        if not url:
            raise ComponentError("flink", "the platform started no Flink cluster")
        ctx = JobContext(
            # the job runs where the broker is: on a cluster, the in-cluster address
            bootstrap=self.endpoints.extra.get("cluster_bootstrap") or self.endpoints.bootstrap,
            input_topic=broker.input_topic,
            output_topic=broker.output_topic,
            dead_letter_topic=broker.dead_letter_topic,
            group=self.group,
            run_id=self.session.id,
            base_dir=self.spec.base_dir,
            extra_topics=tuple(self.inputs),
        )
        self.flink = FlinkJob(FlinkRest(url), workload, ctx)
        job_id = self.flink.submit(check=self.platform.check_health)
        self.record.add_event(
            "flink-job-running",
            f"job {job_id} running at parallelism {workload.parallelism}, first checkpoint done",
            component="jobmanager",
        )
        self._save_flink()

    def _save_flink(self) -> None:
        if self.flink is not None:
            self.record.results["flink"] = self.flink.to_dict()
            self.session.save()

    def _commit_start_offsets(self) -> None:
        """Start this run's groups at the topics' current ends and keep those offsets.

        With reused storage or an external broker the topics hold earlier runs'
        messages: neither the workers nor the tracker read them, and the
        accounting counts only what was written after these offsets.
        """
        broker = self.spec.broker
        for topic in (*self.inputs, broker.output_topic, broker.dead_letter_topic):
            self.start_offsets[topic] = self.offsets.end_offsets(topic)
        groups = {topic: self.group for topic in self.inputs}
        groups[broker.output_topic] = f"scalelab-tracker-{self.session.id}"
        for topic, group in groups.items():
            kafka_ops.commit_offsets(self.admin, group, topic, self.start_offsets[topic])
        self.record.results["start_offsets"] = {
            topic: {str(p): offset for p, offset in ends.items()}
            for topic, ends in self.start_offsets.items()
        }
        self.session.save()

    def _launch(
        self, name: str, role: str, module: str, extra: list[str] | None = None
    ) -> ComponentLaunch:
        args = [
            "--spec",
            str(self.session.dir / "spec.yaml"),
            "--bootstrap",
            self.endpoints.bootstrap,
            "--run-id",
            self.session.id,
            "--run-dir",
            str(self.session.dir),
        ]
        if self.spec.base_dir:
            args += ["--base-dir", str(self.spec.base_dir)]
        return ComponentLaunch(name, role, f"scalelab.components.{module}", args + (extra or []))

    def _wait_group_ready(self, workers: int) -> None:
        group = self.group
        partitions = self.spec.broker.partitions
        deadline = time.monotonic() + GROUP_READY_TIMEOUT
        while time.monotonic() < deadline:
            self.session.interrupts.check()
            self.platform.check_health()
            members, assigned = kafka_ops.group_members(self.admin, group)
            if members == workers and assigned == partitions:
                self.members.changes()  # the baseline for membership events
                self.view.step(f"consumer group: {members} workers hold {partitions} partitions")
                return
            time.sleep(0.5)
        raise ComponentError(
            "workers",
            f"consumer group {group} did not reach {workers} members "
            f"holding {partitions} partitions in {GROUP_READY_TIMEOUT:g} s",
        )

    # -- load -----------------------------------------------------------------------------
    def _start_producer(self) -> int:
        """Start the producer and wait until it has fixed the load's start time."""
        module = "sensors" if self.join else "producer"
        self.platform.start_component(self._launch("producer", "producer", module))
        self.platform.mark_may_finish("producer")
        deadline = time.monotonic() + PRODUCER_READY_TIMEOUT
        while (started := self._result("producer", START_FILE)) is None:
            self.session.interrupts.check()
            self.platform.check_health()
            if time.monotonic() > deadline:
                raise ComponentError(
                    "producer", f"did not become ready in {PRODUCER_READY_TIMEOUT:g} s"
                )
            time.sleep(0.1)
        start_ns = int(started["start_ns"])
        self._start_control()
        return start_ns

    def _result(self, name: str, file: str) -> dict[str, Any] | None:
        """A component's JSON result, through the platform (on a cluster it is in a pod)."""
        try:
            raw = self.platform.read_result(name, file)
            return None if raw is None else dict(json.loads(raw))
        except ValueError:  # written half-way: the next read sees all of it
            return None

    def _watch_load(self, start_ns: int) -> None:
        load = self.spec.load
        warmup_end_ns = start_ns + int(load.warmup * 1e9)
        while self.platform.is_running("producer"):
            self._tick(self.view, start_ns, warmup_end_ns)
        self.platform.check_health()
        self._record_load_phases(start_ns, warmup_end_ns, self._load_end_ns(start_ns))

    def _load_end_ns(self, start_ns: int) -> int:
        """The schedule's end, or the last send if the producer fell behind it."""
        scheduled_end = start_ns + int(self.spec.load.duration * 1e9)
        report = self._result("producer", "producer.json")
        if report is None:
            return max(scheduled_end, time.time_ns())
        return max(scheduled_end, int(report.get("last_send_ns", 0)))

    def _tick(self, view: LiveView, start_ns: int, warmup_end_ns: int) -> None:
        self.session.interrupts.check()
        self.platform.check_health()
        now = time.time_ns()
        if now >= warmup_end_ns and not self.seen.cpu_counts_load:
            self.seen.cpu.reset()
            self.seen.cpu_counts_load = True
        self.seen.cpu.sample(self.platform.component_pids())
        produced, lag = 0, 0
        for topic in self.inputs:
            ends = self.offsets.end_offsets(topic)
            produced += produced_since(self.start_offsets[topic], ends)
            lag += self.offsets.lag(topic, ends)
        elapsed = max(0.0, (now - start_ns) / 1e9)
        self.seen.lag_samples.append((round(elapsed, 2), lag))
        self._inject_faults(elapsed)
        self._tick_control(elapsed)
        self._follow_flink(elapsed)
        self._record_group_changes()
        self._record_platform_events()
        phase = "warmup" if now < warmup_end_ns else "load"
        view.update(phase, elapsed, produced, lag)
        time.sleep(TICK_S)

    def _inject_faults(self, elapsed: float) -> None:
        for fault in self.pending_faults[:]:
            if elapsed >= fault.at and fault.kind == "kill-taskmanager":
                self._kill_taskmanager(fault.worker, elapsed)
                self.pending_faults.remove(fault)
            elif elapsed >= fault.at:
                name = self.workers.live[fault.worker]
                self.platform.kill_component(name)
                self.workers.lost(name)
                self.record.add_event(
                    fault.kind, f"SIGKILL {name} at {elapsed:.1f} s", component=name
                )
                self.view.step(f"fault: {fault.kind}, SIGKILL {name} at {elapsed:.1f} s")
                self.pending_faults.remove(fault)

    def _kill_taskmanager(self, index: int, elapsed: float) -> None:
        if not isinstance(self.platform, TaskManagerKiller):
            raise ComponentError("flink", f"platform {self.platform.name} cannot kill TaskManagers")
        victim, replacement = self.platform.kill_taskmanager(index)
        self.record.add_event(
            "kill-taskmanager",
            f"SIGKILL {victim} at {elapsed:.1f} s; {replacement} started in its place",
            component=victim,
        )

    def _follow_flink(self, elapsed: float) -> None:
        """Start the parallelism steps that are due and record rescales that completed."""
        if self.flink is None:
            return
        for step in self.pending_steps[:]:
            if elapsed >= step.at:
                self.pending_steps.remove(step)
                change = self.flink.rescale(step.parallelism, check=self.platform.check_health)
                self.record.add_event(
                    "rescale-requested",
                    f"{change.mode}: parallelism {change.source} → {change.target} "
                    f"at {elapsed:.1f} s",
                    component="jobmanager",
                )
                self._save_flink()
        for change in self.flink.poll():
            self._record_rescale(change)

    def _record_rescale(self, change: Rescale) -> None:
        effective = (change.effective_ns or change.requested_ns) - change.requested_ns
        completed = (change.completed_ns or change.requested_ns) - change.requested_ns
        self.record.add_event(
            "rescale-completed",
            f"{change.mode}: parallelism {change.source} → {change.target}: effective after "
            f"{effective / 1e9:.2f} s, first checkpoint after {completed / 1e9:.2f} s",
            component="jobmanager",
        )
        self._save_flink()

    def _record_group_changes(self) -> None:
        """Members that left or joined the workers' group (a dead or fenced worker, a rejoin)."""
        for change, member in self.members.changes():
            component = member.client_id if member.client_id != "rdkafka" else None
            self.record.add_event(
                f"group-member-{change}",
                f"member {member.member_id} (client {member.client_id}) {change} "
                f"{self.group}; partitions {list(member.partitions)}",
                component=component,
            )

    def _record_platform_events(self) -> None:
        """What the platform saw (an autoscaler's scaling decisions) goes into the record."""
        for event in self.platform.events():
            self.record.add_event(event.kind, event.detail, component=event.component)

    def _record_load_phases(self, start_ns: int, warmup_end_ns: int, end_ns: int) -> None:
        if warmup_end_ns > start_ns:
            self.record.phases.append(Phase("warmup", _ns(start_ns), _ns(warmup_end_ns)))
        self.record.phases.append(Phase("load", _ns(warmup_end_ns), _ns(end_ns)))
        self.session.save()

    def _drain(self, start_ns: int) -> None:
        deadline = time.monotonic() + self.spec.workload.drain_timeout
        lag = -1
        while time.monotonic() < deadline:
            self.session.interrupts.check()
            self.platform.check_health()
            lag = sum(self.offsets.lag(topic) for topic in self.inputs)
            elapsed = round((time.time_ns() - start_ns) / 1e9, 2)
            self.seen.lag_samples.append((elapsed, lag))
            self.view.tick(lag=lag)
            self._follow_flink(elapsed)
            self._tick_control(elapsed)
            self._record_group_changes()
            self._record_platform_events()
            if lag == 0:
                return
            time.sleep(TICK_S)
        self.record.warnings.append(
            f"drain: consumer lag still {lag} after {self.spec.workload.drain_timeout:g} s"
        )

    def _stop_data_plane(self) -> None:
        """Workers first (each finishes and commits its batch), then the tracker, which reads
        the output topic to its end: the accounting then sees a world that no longer moves.
        A Flink job stops with a savepoint, which commits its last results and offsets."""
        self._stop_control()
        if self.flink is not None:
            savepoint = self.flink.stop()
            how = f"with savepoint {savepoint}" if savepoint else "cancelled (savepoint failed)"
            self.record.add_event("flink-job-stopped", how, component="jobmanager")
            self._save_flink()
        self.workers.stop_all()  # whoever is live now, newest first
        self.platform.stop_component("tracker", timeout=90)

    # -- results --------------------------------------------------------------------------
    def _finish(self) -> None:
        """Accounting and summary.json; a broken accounting fails the run after both are saved."""
        accounting = self._account()
        window = self._load_window_ns()
        extras: dict[str, Any] = {
            "accounting": accounting.to_dict(),
            "cpu": self.seen.cpu.usage(),
            "cpu_host": self.seen.cpu.host_usage(),
            "consumer_lag": [{"t": t, "lag": lag} for t, lag in self.seen.lag_samples],
        }
        if self.flink is not None:
            figures = flink_figures(self.endpoints.prometheus_url, window)
            extras["flink"] = {**figures, **self.flink.to_dict()}
        self._note_tracker_drain()
        summary = summarise(
            self.session.dir,
            window,
            self._target_rate(),
            extras,
            dead_letter_ids=self.dead_letter_ids,
        )
        if "autoscaler" in self.record.results:
            summary["autoscaler"] = self._autoscaler_figures(summary)
        if "chaos" in self.record.results:
            summary["chaos"] = self.record.results["chaos"]
        (self.session.dir / "summary.json").write_text(json.dumps(summary, indent=2))
        self.record.results["summary"] = "summary.json"
        if not accounting.ok:
            raise AccountingError(accounting)

    def _autoscaler_figures(self, summary: dict[str, Any]) -> dict[str, object]:
        """Replica-seconds, rescales, reaction times, SLO-violation seconds (seconds of the
        load phase whose latency percentile is above the SLO's ceiling), duplicates per
        rescale."""
        qos = read_qos(self.session.dir / "qos.parquet")
        limits = ceilings(self.spec.model_dump(mode="json"))
        none = np.zeros(0)
        intended, latency = qos.get("intended_ns", none), qos.get("latency_s", none)
        slo_s = violation_seconds(intended, latency, limits, self._load_window_ns())
        return run_figures(self.record.results["autoscaler"], slo_s, duplicates(summary))

    def _note_tracker_drain(self) -> None:
        """The tracker says in tracker.json whether it read the output topic to its end."""
        report = self._result("tracker", "tracker.json")
        if report is None:
            return
        if not report.get("drained", True):
            self.record.warnings.append(
                f"tracker: gave up reading the output topic with {report.get('behind')} "
                "records unread; qos.parquet misses them"
            )

    def _account(self) -> Accounting:
        """This run's messages only: offsets since the run's start, ids of this run."""
        broker, run_id = self.spec.broker, self.session.id
        qos = read_qos(self.session.dir / "qos.parquet")
        mine = [str(i).startswith(f"{run_id}:") for i in qos.get("id", [])]
        processed_ids = [str(i) for i, ok in zip(qos.get("id", []), mine, strict=True) if ok]
        self.dead_letter_ids = of_run(self._read_keys(broker.dead_letter_topic), run_id)
        if len(self.inputs) > 1:
            return self._account_inputs(processed_ids)
        ends = self.offsets.end_offsets(broker.input_topic)
        produced = produced_since(self.start_offsets[broker.input_topic], ends)
        tail = self._uncommitted_tail(broker.input_topic, ends)
        if sum(end - first for first, end in tail.values()) <= TAIL_READ_LIMIT:
            queued = of_run(self._read_keys(broker.input_topic, _firsts(tail)), run_id)
            return account(produced, processed_ids, self.dead_letter_ids, queued)
        at = zip(qos.get("partition", []), qos.get("offset", []), mine, strict=True)
        placed = unprocessed_in_tail(tail, ((int(p), int(o)) for p, o, ok in at if ok))
        self.record.warnings.append(
            f"accounting: still-queued placed by offset (tail over {TAIL_READ_LIMIT} messages); "
            "a dead-lettered message in that tail counts as queued too"
        )
        return account(produced, processed_ids, self.dead_letter_ids, [], placed)

    def _account_inputs(self, processed_ids: list[str]) -> Accounting:
        """Several input topics (the join): every topic's growth and uncommitted tail count;
        the tails are read for their keys whatever their size (ids are unique across the
        topics, since one schedule numbers the records of both)."""
        produced, queued = 0, []
        for topic in self.inputs:
            ends = self.offsets.end_offsets(topic)
            produced += produced_since(self.start_offsets[topic], ends)
            tail = self._uncommitted_tail(topic, ends)
            queued += of_run(self._read_keys(topic, _firsts(tail)), self.session.id)
        return account(produced, processed_ids, self.dead_letter_ids, queued)

    def _uncommitted_tail(self, topic: str, ends: dict[int, int]) -> dict[int, tuple[int, int]]:
        """[first, end) per partition of what the group has not committed since the start.

        Some of it may be processed and not yet committed: it is not all queued."""
        committed = self.offsets.committed(topic, list(ends))
        start = self.start_offsets[topic]
        return {
            p: (min(end, max(committed.get(p, 0), start.get(p, 0))), end) for p, end in ends.items()
        }

    def _read_keys(self, topic: str, start: dict[int, int] | None = None) -> list[str]:
        begin = self.start_offsets[topic] if start is None else start
        return kafka_ops.read_keys(self.endpoints.bootstrap, topic, begin)

    def _load_window_ns(self) -> tuple[int, int]:
        window = self.record.window("load")
        assert window is not None
        return int(window[0].timestamp() * 1e9), int(window[1].timestamp() * 1e9)

    def _target_rate(self) -> float:
        """The producer's schedule, not a second copy of it, says what the target was."""
        report = self._result("producer", "producer.json")
        return 0.0 if report is None else float(report.get("target_rate", 0.0))


class AccountingError(ScalelabError):
    """Messages went missing: produced ≠ processed + dead-lettered + still queued."""

    def __init__(self, accounting: Accounting):
        self.accounting = accounting
        super().__init__(
            f"accounting broken: {accounting.lost} of {accounting.produced} "
            f"messages lost ({accounting.to_dict()})"
        )


def duplicates(summary: dict[str, Any]) -> int:
    """Duplicate output records (at-least-once redelivery after rebalances)."""
    found = summary.get("duplicates") or {}
    return int(found.get("records", 0)) if isinstance(found, dict) else int(found)


def _firsts(tail: dict[int, tuple[int, int]]) -> dict[int, int]:
    return {p: first for p, (first, _) in tail.items()}


def _ns(epoch_ns: int) -> str:
    return rfc3339(datetime.fromtimestamp(epoch_ns / 1e9, UTC))
