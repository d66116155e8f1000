"""Cross-field checks on a parsed spec: small named functions, each returning problems."""

from __future__ import annotations

from collections.abc import Callable

from scalelab.errors import SpecProblem
from scalelab.spec.models import ExperimentSpec

Check = Callable[[ExperimentSpec], list[SpecProblem]]


def check_partitions_cover_workers(spec: ExperimentSpec) -> list[SpecProblem]:
    """Workers beyond the partition count would sit idle in the consumer group."""
    if spec.broker.partitions >= spec.workload.workers:
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
    if spec.workload.imgsz % 32 == 0:
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


CHECKS: list[Check] = [
    check_partitions_cover_workers,
    check_imgsz_multiple_of_32,
    check_replication_local,
    check_distinct_topics,
]


def run_checks(spec: ExperimentSpec) -> list[SpecProblem]:
    return [problem for check in CHECKS for problem in check(spec)]
