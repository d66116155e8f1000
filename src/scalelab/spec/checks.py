"""Cross-field checks on a parsed spec: small named functions, each returning problems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scalelab.errors import SourceError, SpecProblem
from scalelab.load.sources import probe_source
from scalelab.spec.autoscale import check_autoscaler_flink_schedule, check_autoscaler_on_kubernetes
from scalelab.spec.models import ExperimentSpec, FlinkJar, FlinkWorkload, YoloWorkload

Check = Callable[[ExperimentSpec], list[SpecProblem]]


def check_partitions_cover_workers(spec: ExperimentSpec) -> list[SpecProblem]:
    """Workers beyond the partition count would sit idle in the consumer group."""
    if (
        not isinstance(spec.workload, YoloWorkload)
        or spec.broker.partitions >= spec.workload.workers
    ):
        return []
    return [
        SpecProblem(
            "broker.partitions",
            f"must be at least workload.workers ({spec.workload.workers}), "
            "or the extra workers get no partition",
            value=spec.broker.partitions,
        )
    ]


def check_imgsz_multiple_of_32(spec: ExperimentSpec) -> list[SpecProblem]:
    """YOLO's largest stride is 32; unset means the model's own size, checked when it loads."""
    if not isinstance(spec.workload, YoloWorkload):
        return []
    if spec.workload.imgsz is None or spec.workload.imgsz % 32 == 0:
        return []
    return [SpecProblem("workload.imgsz", "must be a multiple of 32", value=spec.workload.imgsz)]


def check_replication_local(spec: ExperimentSpec) -> list[SpecProblem]:
    """The local platform runs one broker, which cannot hold more than one replica."""
    local_broker = spec.platform.kind == "local" and spec.broker.bootstrap is None
    if not local_broker or spec.broker.replication == 1:
        return []
    return [
        SpecProblem(
            "broker.replication",
            "the local platform runs a single broker, so replication must be 1",
            value=spec.broker.replication,
        )
    ]


def check_distinct_topics(spec: ExperimentSpec) -> list[SpecProblem]:
    topics = [spec.broker.input_topic, spec.broker.output_topic, spec.broker.dead_letter_topic]
    if len(set(topics)) == len(topics):
        return []
    return [SpecProblem("broker", "input, output and dead-letter topics must differ")]


def check_faults_leave_a_worker(spec: ExperimentSpec) -> list[SpecProblem]:
    """Faults name existing workers (or TaskManagers) and leave one alive to take over."""
    problems = []
    killed = set()
    wl = spec.workload
    kind, count, field = (
        ("kill-worker", wl.workers, "workload.workers")
        if isinstance(wl, YoloWorkload)
        else ("kill-taskmanager", wl.taskmanagers, "workload.taskmanagers")
    )
    for index, fault in enumerate(spec.faults):
        if fault.kind != kind:
            problems.append(
                SpecProblem(
                    f"faults.{index}.kind",
                    f"a {wl.kind} workload takes '{kind}' faults",
                    value=fault.kind,
                )
            )
        if fault.worker >= count:
            problems.append(
                SpecProblem(
                    f"faults.{index}.worker",
                    f"no such {'worker' if kind == 'kill-worker' else 'TaskManager'} "
                    f"({field} is {count})",
                    value=fault.worker,
                )
            )
        if fault.at >= spec.load.duration:
            problems.append(
                SpecProblem(f"faults.{index}.at", "must fall inside load.duration", value=fault.at)
            )
        killed.add(fault.worker)
    if killed and len(killed) >= count and isinstance(wl, YoloWorkload):
        problems.append(SpecProblem("faults", "would kill every worker; none would be left"))
    return problems


def check_flink_parallelism(spec: ExperimentSpec) -> list[SpecProblem]:
    """Every parallelism the job is asked for must fit the slots and the maximum parallelism
    (the adaptive scheduler would otherwise run it lower without saying so)."""
    wl = spec.workload
    if not isinstance(wl, FlinkWorkload):
        return []
    asked = [("workload.parallelism", wl.parallelism)]
    asked += [
        (f"workload.schedule.{i}.parallelism", s.parallelism) for i, s in enumerate(wl.schedule)
    ]
    if wl.strategy is not None:
        asked.append(("workload.strategy.max", wl.strategy.max))
    problems = []
    for path, value in asked:
        if value > wl.slots:
            problems.append(
                SpecProblem(
                    path,
                    f"exceeds the task slots (taskmanagers × slots_per_taskmanager = {wl.slots})",
                    value=value,
                )
            )
        elif value > wl.max_parallelism:
            problems.append(
                SpecProblem(
                    path, f"exceeds workload.max_parallelism ({wl.max_parallelism})", value=value
                )
            )
    if wl.strategy is not None and wl.schedule:
        problems.append(SpecProblem("workload.strategy", "give a schedule or a strategy, not both"))
    for index, step in enumerate(wl.schedule):
        if step.at >= spec.load.duration:
            problems.append(
                SpecProblem(
                    f"workload.schedule.{index}.at", "must fall inside load.duration", value=step.at
                )
            )
    return problems


FLINK_PLATFORMS = ("local", "kubernetes")


def check_flink_platform(spec: ExperimentSpec) -> list[SpecProblem]:
    """Flink runs on the local and Kubernetes platforms (its own Deployments or the operator)."""
    if not isinstance(spec.workload, FlinkWorkload) or spec.platform.kind in FLINK_PLATFORMS:
        return []
    return [
        SpecProblem(
            "workload.kind",
            "a Flink workload runs on platform.kind local or kubernetes",
            value="flink",
        )
    ]


def check_flink_jar(spec: ExperimentSpec) -> list[SpecProblem]:
    """A user's job jar must exist here (the local platform uploads it)."""
    wl = spec.workload
    if not isinstance(wl, FlinkWorkload) or not isinstance(wl.job, FlinkJar):
        return []
    path = Path(wl.job.jar).expanduser()
    if not path.is_absolute() and spec.base_dir is not None:
        path = spec.base_dir / path
    if spec.platform.kind != "local" or path.is_file():
        return []
    return [SpecProblem("workload.job.jar", "no such file", value=str(path))]


def check_source_readable(spec: ExperimentSpec) -> list[SpecProblem]:
    """A file source must give frames, found out now rather than after the stack is up.

    Only on the local platform: a cluster's pods read paths inside their image
    or volumes, which this machine cannot see.
    """
    if spec.platform.kind != "local":
        return []
    try:
        probe_source(spec.source, spec.base_dir)
    except SourceError as error:
        return [SpecProblem(f"source.{error.field}", error.reason, value=str(error.path))]
    return []


CHECKS: list[Check] = [
    check_partitions_cover_workers,
    check_imgsz_multiple_of_32,
    check_replication_local,
    check_distinct_topics,
    check_faults_leave_a_worker,
    check_source_readable,
    check_flink_parallelism,
    check_flink_jar,
    check_flink_platform,
    check_autoscaler_on_kubernetes,
    check_autoscaler_flink_schedule,
]


def run_checks(spec: ExperimentSpec) -> list[SpecProblem]:
    return [problem for check in CHECKS for problem in check(spec)]
