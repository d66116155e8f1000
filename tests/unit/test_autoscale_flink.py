"""The Flink autoscaler's own logic: bounds, rescale completion, and the Prometheus inputs.

The rescale records are flink_job's real `Rescale`, filled in as `FlinkJob.poll` fills
them; the Prometheus samples carry the labels a real run's JMX exporter gave (the frames
job's one chained vertex, subtask and TaskManager ids)."""

from __future__ import annotations

import math
import time
from typing import Any, cast

from scalelab.autoscale.controller import RESCALE_TIMEOUT_S, Controller
from scalelab.autoscale.flink import FlinkParallelism, Slots, rescale_progress
from scalelab.autoscale.flink_prom import FlinkReader, Sample, busiest_vertex, flink_readings
from scalelab.autoscale.policy import make_policy
from scalelab.autoscale.signals import Signals
from scalelab.platform.local.flink_job import FlinkJob, Rescale
from scalelab.platform.local.flink_rest import JobState
from scalelab.spec.autoscale import AutoscalerSpec

FRAMES = "Source-_source_-_frames_-_sink-_Writer_-_sink-_Committer"  # as the exporter names it


def subtask(index: int, task: str = FRAMES) -> dict[str, str]:
    return {
        "component": "taskmanager-0",
        "job_name": "scalelab-frames-20261128T210000Z-flink-test-e60993",
        "role": "flink",
        "run_id": "20261128T210000Z-flink-test-e60993",
        "subtask_index": str(index),
        "task_name": task,
        "tm_id": "127.0.0.1-45045-b3c6da",
    }


# -- bounds ------------------------------------------------------------------------------


def test_a_parallelism_within_the_slots_is_kept() -> None:
    assert Slots(128, 1, 2).clamp(2) == (2, "")


def test_above_the_slots_the_reason_names_them() -> None:
    n, why = Slots(128, 1, 2).clamp(3)
    assert n == 2 and "available slots (1 taskmanagers × 2 slots)" in why


def test_above_the_max_parallelism_the_reason_names_it() -> None:
    n, why = Slots(max_parallelism=3, taskmanagers=2, per_taskmanager=4).clamp(6)
    assert n == 3 and "workload.max_parallelism (3)" in why


def test_a_job_never_runs_below_parallelism_one() -> None:
    n, why = Slots(128, 1, 2).clamp(0)
    assert n == 1 and "1 or more" in why


# -- completion --------------------------------------------------------------------------


def test_a_rescale_completes_at_the_first_checkpoint_at_the_new_parallelism() -> None:
    change = Rescale("adaptive", 1, 2, requested_ns=100)
    assert not rescale_progress(change, 2).done
    assert "never ran at parallelism 2" in rescale_progress(change, 2).seen
    change.effective_ns = 200  # every task RUNNING at 2 (FlinkJob.poll)
    running = rescale_progress(change, 2)
    assert not running.done and "no checkpoint completed" in running.seen
    change.completed_ns = 300
    done = rescale_progress(change, 2)
    assert done.done and (done.requested_ns, done.effective_ns, done.completed_ns) == (
        100,
        200,
        300,
    )


class CooldownRest:
    """A job's REST answers while the adaptive scheduler holds a rescale in its cooldown: the
    job keeps running and checkpointing at the old parallelism, then restarts at the new one."""

    def __init__(self, completed: int) -> None:
        self.completed = completed
        self.parallelism = 1

    def job_state(self, job_id: str) -> JobState:
        running = {"RUNNING": self.parallelism}
        return JobState("RUNNING", running, {FRAMES: self.parallelism})

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        return {"counts": {"completed": self.completed}}


def test_checkpoints_taken_before_the_restart_do_not_complete_a_rescale() -> None:
    rest = CooldownRest(completed=3)
    job = FlinkJob(cast(Any, rest), cast(Any, None), cast(Any, None), job_id="j", parallelism=1)
    change = Rescale("adaptive", 1, 2, requested_ns=1, job_id="j", checkpoints_before=3)
    job.rescales.append(change)
    rest.completed = 5  # two checkpoints at parallelism 1 during the cooldown
    assert job.poll() == [] and change.effective_ns is None
    rest.parallelism = 2  # restarted: every task RUNNING at 2, no checkpoint at 2 yet
    assert job.poll() == [] and change.effective_ns is not None
    assert change.completed_ns is None
    rest.completed = 6  # the first checkpoint at parallelism 2
    assert job.poll() == [change] and change.completed_ns is not None


class Job:
    """A job's rescale contract over a counter: each request gives a real `Rescale` record,
    which the test advances as `FlinkJob.poll` would."""

    def __init__(self, parallelism: int) -> None:
        self.parallelism = parallelism
        self.rescales: list[Rescale] = []

    def rescale(self, target: int, check: Any = None) -> Rescale:
        change = Rescale("adaptive", self.parallelism, target, time.time_ns())
        self.rescales.append(change)
        self.parallelism = target
        return change


def flink_controller(job: Job, slots: Slots, **fields: Any) -> Controller:
    spec = AutoscalerSpec.model_validate({"max": 8, **fields})
    actuator = FlinkParallelism(job, slots)
    # A Flink source is no member of the group: the group never shows a rescale.
    return Controller(spec, make_policy(spec), actuator, lambda: (0, 0), partitions=2)


def test_the_controller_clamps_to_the_slots_and_says_so() -> None:
    job = Job(1)
    ctl = flink_controller(job, Slots(128, 1, 2), policy="threshold", lag_high=10, step=3)
    d = ctl.decide(Signals(0, job.parallelism, lag=100))
    assert (d.wanted, d.target, d.action, job.parallelism) == (4, 2, "scale-up", 2)
    assert "clamped to 2: the available slots" in d.reason
    at_most = ctl.decide(Signals(60, job.parallelism, lag=100))
    assert at_most.action == "none" and "clamped to 2" in at_most.reason  # at the ceiling


def test_the_controller_follows_the_job_not_the_group() -> None:
    job = Job(1)
    ctl = flink_controller(job, Slots(128, 2, 2), policy="threshold", lag_high=10, cooldown=5)
    d = ctl.decide(Signals(0, 1, lag=100))
    assert d.action == "scale-up"
    assert ctl.follow(1) is None  # not running at 2 yet
    change = job.rescales[-1]
    change.effective_ns = change.requested_ns + 400_000_000
    assert ctl.follow(2) is None  # running, no checkpoint since
    change.completed_ns = change.requested_ns + 1_500_000_000
    closed = ctl.follow(3)
    assert closed is d
    assert (d.requested_ns, d.effective_ns, d.completed_ns) == (
        change.requested_ns,
        change.effective_ns,
        change.completed_ns,
    )
    assert ctl.decide(Signals(5, 2, lag=100)).action == "held"  # cooldown from completion
    assert "cooldown until 8.0 s" in ctl.decisions[-1].reason


def test_a_rescale_the_job_never_shows_is_closed_and_says_what_was_seen() -> None:
    job = Job(1)
    ctl = flink_controller(job, Slots(128, 1, 2), policy="threshold", lag_high=10)
    d = ctl.decide(Signals(0, 1, lag=100))
    closed = ctl.follow(RESCALE_TIMEOUT_S + 1)
    assert closed is d and d.completed_ns is None
    assert "never ran at parallelism 2 with every task RUNNING" in d.reason


# -- inputs from Prometheus --------------------------------------------------------------


def test_busy_fractions_above_one_are_clamped_and_nan_ignored() -> None:
    busy = [(subtask(0), 1.37), (subtask(1), 0.4), (subtask(2), math.nan)]
    records = [(subtask(0), 25.0), (subtask(1), 10.0)]
    found = flink_readings(busy, records, cpu_total=1.2)
    assert found["busy"] == (1.0, 0.4)
    assert found["processed_rate"] == 35.0
    assert found["cpu"] == (0.6, 0.6)  # the TaskManagers' CPU shared by the subtasks


def test_the_busiest_vertex_stands_for_the_job() -> None:
    window = "Window-Join_-_sink"
    busy = [
        (subtask(0, "Source-_a"), 0.1),
        (subtask(1, "Source-_a"), 0.1),
        (subtask(1, window), 0.9),
        (subtask(0, window), 0.8),
    ]
    records = [(subtask(0, "Source-_a"), 50.0), (subtask(0, window), 40.0)]
    assert busiest_vertex(busy) == window
    found = flink_readings(busy, records, cpu_total=math.nan)
    assert found["busy"] == (0.8, 0.9)  # by subtask index
    assert found["processed_rate"] == 40.0 and found["cpu"] == ()


def test_nothing_measured_leaves_every_input_unknown() -> None:
    assert flink_readings([], [(subtask(0), 3.0)], 0.5) == {}
    assert busiest_vertex([(subtask(0), math.nan)]) is None


class Recorded(FlinkReader):
    """The reader with Prometheus' answers given: what it asks, and what it makes of them."""

    def __init__(self, answers: dict[str, list[Sample]]) -> None:
        super().__init__("http://127.0.0.1:9", "r1", 5)
        self.answers = answers
        self.asked: list[str] = []

    def samples(self, expr: str) -> list[Sample]:
        self.asked.append(expr)
        return next((a for key, a in self.answers.items() if key in expr), [])


def test_the_reader_uses_rates_of_counters_not_the_per_second_gauges() -> None:
    reader = Recorded(
        {
            "accumulateBusyTimeMs": [(subtask(0), 1.02)],
            "numRecordsIn": [(subtask(0), 24.5)],
            "process_cpu_seconds_total": [({}, 0.9)],
        }
    )
    try:
        found = reader.readings()
    finally:
        reader.close()
    assert found["busy"] == (1.0,) and found["processed_rate"] == 24.5
    assert math.isnan(float(found["latency_p95"]))
    flink = [q for q in reader.asked if "flink_taskmanager" in q]
    assert all("rate(" in q and "PerSecond" not in q for q in flink), flink
    assert any("accumulateBusyTimeMs" in q and "/ 1000" in q for q in flink)
    assert all('run_id="r1",role="flink"' in q for q in flink)


def test_ds2_on_the_job_inputs_asks_for_more_than_the_slots_and_gets_them() -> None:
    """One subtask saturated at 25 frames/s, 40 frames/s arriving: DS2 wants 3 at 70 %;
    the cluster has 2 slots, so the decision asks for 2 and says why."""
    found = flink_readings([(subtask(0), 1.1)], [(subtask(0), 25.0)], 0.9)
    signals = Signals(20, 1, arrival_rate=40, lag=0, **found)
    job = Job(1)
    ctl = flink_controller(job, Slots(128, 1, 2), policy="ds2", stabilisation_down=0)
    d = ctl.decide(signals)
    assert (d.wanted, d.target, d.action) == (3, 2, "scale-up")
    assert "true rate 25.0/s" in d.reason and "available slots" in d.reason
    assert [c.target for c in job.rescales] == [2]


def test_ds2_says_why_it_has_no_true_rate() -> None:
    """Busy subtasks with no records in over the window (a sink flush holding the task)
    are not 'no busy time'."""
    ds2 = make_policy(AutoscalerSpec.model_validate({"policy": "ds2"}))
    stalled = ds2.decide(Signals(40, 2, arrival_rate=0, lag=34, processed_rate=0, busy=(1.0, 1.0)))
    assert stalled.replicas == 2 and "busy 100% but no records processed" in stalled.reason
    assert "no busy time" in ds2.decide(Signals(0, 1, arrival_rate=5, lag=0)).reason
    first = ds2.decide(Signals(3, 1, processed_rate=5, lag=0, busy=(0.2,)))
    assert "no arrival rate yet" in first.reason
