"""A Flink job's inputs from the run's Prometheus: `rate()` of Flink's counters.

Flink's `*PerSecond` gauges (`busyTimeMsPerSecond`, `numRecordsInPerSecond`) are
averages over a past 60 s and gave wrong rates after a restart (spurious rescales), so
the reader takes `rate()` of the counters the JMX exporter passes on per subtask,
`accumulateBusyTimeMs` (milliseconds busy) and `numRecordsIn`, and clamps busy fractions
to [0, 1] (a rate over a load edge or a task restart can exceed 1). Only subtasks that
report now count (`and` the counter's current sample): a subtask gone after a scale-down
is stale at once, where its range would linger for a window.

A job has one or more vertices (tasks of chained operators), all at the job's
parallelism. The busiest vertex (highest total busy fraction) stands for the job: its
subtasks' busy fractions and its records-in rate are what a policy reads, so DS2's true
rate is per subtask of the bottleneck. scalelab's `frames` job is one vertex (source,
frames and sink chained). CPU for `hpa` is the TaskManagers' CPU shared evenly among
the subtasks (each slot runs one subtask of every vertex).
"""

from __future__ import annotations

import math

from scalelab.autoscale.prom import PromReader

Sample = tuple[dict[str, str], float]
TASK = "flink_taskmanager_job_task_"


def busiest_vertex(busy: list[Sample]) -> str | None:
    """The task (vertex) whose subtasks are busiest in total; None without a figure."""
    totals: dict[str, float] = {}
    for labels, value in busy:
        if not math.isnan(value):
            name = labels.get("task_name", "")
            totals[name] = totals.get(name, 0.0) + min(1.0, max(0.0, value))
    if not totals:
        return None
    return max(sorted(totals), key=lambda name: totals[name])


def flink_readings(
    busy: list[Sample], records: list[Sample], cpu_total: float
) -> dict[str, object]:
    """`Signals` fields from per-subtask busy fractions and records-in rates (unclamped, as
    queried), and the TaskManagers' CPU in cores; {} while nothing was measured."""
    vertex = busiest_vertex(busy)
    if vertex is None:
        return {}
    mine = sorted(
        (int(labels.get("subtask_index", 0)), value)
        for labels, value in busy
        if labels.get("task_name", "") == vertex and not math.isnan(value)
    )
    fractions = tuple(min(1.0, max(0.0, value)) for _, value in mine)
    rates = [
        value
        for labels, value in records
        if labels.get("task_name", "") == vertex and not math.isnan(value)
    ]
    n = len(fractions)
    cpu = (cpu_total / n,) * n if not math.isnan(cpu_total) else ()
    return dict(busy=fractions, processed_rate=sum(rates) if rates else math.nan, cpu=cpu)


class FlinkReader(PromReader):
    def __init__(self, url: str, run_id: str, window: float):
        super().__init__(url, run_id, window, components="taskmanager-.*")
        self.flink = f'run_id="{run_id}",role="flink"'
        self.taskmanagers = f'{self.flink},component=~"taskmanager-.*"'

    def per_subtask(self, counter: str, divisor: int = 1) -> list[Sample]:
        """rate() of a task counter per subtask that reports now, divided by `divisor`."""
        metric = f"{TASK}{counter}{{{self.flink}}}"
        return self.samples(f"rate({metric}[{self.window}]) / {divisor} and {metric}")

    def cpu_total(self) -> float:
        live = f"(up{{{self.taskmanagers}}} == 1)"
        cpu = f"rate(process_cpu_seconds_total{{{self.taskmanagers}}}[{self.window}])"
        values = self.query(f"sum({cpu} and on(component) {live})")
        return values[0] if values else math.nan

    def readings(self) -> dict[str, object]:
        busy = self.per_subtask("accumulateBusyTimeMs", 1000)
        records = self.per_subtask("numRecordsIn")
        found = flink_readings(busy, records, self.cpu_total())
        return {**found, "latency_p95": self.latency_p95()}
