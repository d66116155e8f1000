"""One Flink job of a run: submitted over REST, watched until it truly runs, rescaled, stopped.

The job is ready when it runs, every task runs and a first checkpoint has completed: by
then the Kafka source holds its partitions and has committed offsets for the run's group,
and the sink has opened its producers (transactions, for exactly-once). A job that fails
before that raises `FlinkJobError` with Flink's root cause, before any load is sent.

A rescale is recorded with three times: requested (the REST call), effective (the job
runs again, every task running at the new parallelism) and completed (the first
checkpoint completed after that, i.e. the new tasks process and commit).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scalelab.platform.local.flink import jobs_jar
from scalelab.platform.local.flink_rest import FlinkJobError, FlinkRest, JobState
from scalelab.spec.models import FlinkJar, FlinkWorkload

JOB_READY_TIMEOUT = 180.0
ENTRY_CLASSES = {"frames": "io.scalelab.flink.FramesJob", "join": "io.scalelab.flink.JoinJob"}


@dataclass(frozen=True)
class JobContext:
    """Where the job reads and writes, and the group whose offsets scalelab watches."""

    bootstrap: str
    input_topic: str
    output_topic: str
    dead_letter_topic: str
    group: str
    run_id: str
    base_dir: Path | None = None
    extra_topics: tuple[str, ...] = ()  # every input topic, for a job reading several

    def placeholders(self) -> dict[str, str]:
        return {
            "bootstrap": self.bootstrap,
            "input_topic": self.input_topic,
            "output_topic": self.output_topic,
            "dead_letter_topic": self.dead_letter_topic,
            "group": self.group,
            "run_id": self.run_id,
        }


@dataclass
class Rescale:
    mode: str
    source: int
    target: int
    requested_ns: int
    effective_ns: int | None = None
    completed_ns: int | None = None
    job_id: str = ""
    checkpoints_before: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_program(workload: FlinkWorkload, ctx: JobContext) -> tuple[Path, str, list[str]]:
    """The jar, entry class and program arguments of the workload's job."""
    if isinstance(workload.job, FlinkJar):
        jar = Path(workload.job.jar).expanduser()
        if not jar.is_absolute() and ctx.base_dir is not None:
            jar = ctx.base_dir / jar
        values = ctx.placeholders()
        return jar, workload.job.entry_class, [a.format(**values) for a in workload.job.args]
    common = [
        *("--bootstrap", ctx.bootstrap, "--group", ctx.group, "--run-id", ctx.run_id),
        *("--output", ctx.output_topic, "--dead-letter", ctx.dead_letter_topic),
        *("--checkpoint-ms", str(int(workload.checkpoint_interval * 1000))),
        *("--delivery", workload.delivery, "--max-parallelism", str(workload.max_parallelism)),
    ]
    if workload.job == "frames":
        work = workload.work
        args = [
            *("--input", ctx.input_topic, "--decode", "true" if work.decode else "false"),
            *("--burn-us", str(int(work.burn * 1e6)), "--sleep-us", str(int(work.sleep * 1e6))),
        ]
    else:
        join = workload.join
        topics = ",".join(ctx.extra_topics)
        args = [
            *("--input", topics, "--window-ms", str(int(join.window * 1000))),
            *("--fibonacci", str(join.fibonacci), "--lateness-ms", str(int(join.lateness * 1000))),
        ]
    return jobs_jar(), ENTRY_CLASSES[workload.job], common + args


@dataclass
class FlinkJob:
    rest: FlinkRest
    workload: FlinkWorkload
    ctx: JobContext
    job_id: str = ""
    jar_id: str = ""
    parallelism: int = 0
    rescales: list[Rescale] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)  # every job of the run (savepoint rescales)

    def submit(self, check: Any = None, savepoint: str | None = None, parallelism: int = 0) -> str:
        """Upload (once) and run the job; return once it is ready (see the module doc)."""
        jar, entry, args = job_program(self.workload, self.ctx)
        if not jar.is_file():
            raise FlinkJobError("job jar", f"no such file: {jar}")
        if not self.jar_id:
            self.jar_id = self.rest.upload(jar)
        self.parallelism = parallelism or self.workload.parallelism
        self.job_id = self.rest.run(self.jar_id, entry, args, self.parallelism, savepoint)
        self.job_ids.append(self.job_id)
        try:
            self.rest.wait_running(self.job_id, JOB_READY_TIMEOUT, check)
            self.wait_checkpoint(0, JOB_READY_TIMEOUT, check)
        except BaseException:
            self.cancel()
            raise
        return self.job_id

    def completed_checkpoints(self) -> int:
        counts = self.rest.checkpoints(self.job_id).get("counts", {})
        return int(counts.get("completed", 0))

    def wait_checkpoint(self, after: int, timeout: float, check: Any = None) -> None:
        """Until more than `after` checkpoints have completed; a failed job raises."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check is not None:
                check()
            if self.completed_checkpoints() > after:
                return
            state = self.rest.job_state(self.job_id)
            if state.state in ("FAILED", "CANCELED", "FINISHED"):
                raise FlinkJobError(
                    f"job {self.job_id} {state.state}", self.rest.failure(self.job_id)
                )
            time.sleep(0.2)
        raise FlinkJobError(f"job {self.job_id}", f"no checkpoint completed in {timeout:g} s")

    # -- rescaling ------------------------------------------------------------------------
    def rescale(self, target: int, check: Any = None) -> Rescale:
        """Ask for a new parallelism. Adaptive: returns at once (`poll` follows it up);
        savepoint: stops the job with a savepoint and resubmits it, then returns."""
        change = Rescale(self.workload.rescale, self.parallelism, target, time.time_ns())
        change.checkpoints_before = self.completed_checkpoints()
        self.rescales.append(change)
        if self.workload.rescale == "adaptive":
            self.rest.rescale(self.job_id, target)
            self.parallelism = target
            change.job_id = self.job_id
            return change
        savepoint = self.rest.stop_with_savepoint(self.job_id)
        self.job_id = ""
        jar, entry, args = job_program(self.workload, self.ctx)
        self.parallelism = target
        self.job_id = self.rest.run(self.jar_id, entry, args, target, savepoint)
        self.job_ids.append(self.job_id)
        change.job_id = self.job_id
        self.rest.wait_running(self.job_id, JOB_READY_TIMEOUT, check)
        change.effective_ns = time.time_ns()
        change.checkpoints_before = 0
        return change

    def poll(self) -> list[Rescale]:
        """Advance every open rescale; returns those that completed just now."""
        done = []
        for change in self.rescales:
            if change.completed_ns is not None:
                continue
            if change.effective_ns is None and self._at_parallelism(change.target):
                change.effective_ns = time.time_ns()
                # Checkpoints counted so far ran at the old parallelism: the adaptive
                # scheduler keeps the job running (and checkpointing) through its cooldown
                # before it restarts it. Only a later one proves the new tasks committed.
                change.checkpoints_before = self.completed_checkpoints()
            if (
                change.effective_ns is not None
                and self.completed_checkpoints() > change.checkpoints_before
            ):
                change.completed_ns = time.time_ns()
                done.append(change)
        return done

    def _at_parallelism(self, target: int) -> bool:
        state: JobState = self.rest.job_state(self.job_id)
        return state.all_running and all(p == target for p in state.parallelism.values())

    # -- stopping -------------------------------------------------------------------------
    def stop(self) -> str | None:
        """Stop with a drained savepoint (open windows fire, the last transactions and offsets
        commit); cancel if that fails. Returns the savepoint path, or None when cancelled."""
        if not self.job_id:
            return None
        try:
            return self.rest.stop_with_savepoint(self.job_id, drain=True)
        except FlinkJobError:
            self.cancel()
            return None
        finally:
            self.job_id = ""

    def cancel(self) -> None:
        if self.job_id:
            with contextlib.suppress(FlinkJobError):
                self.rest.cancel(self.job_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_ids": self.job_ids,
            "parallelism": self.parallelism,
            "rescales": [change.to_dict() for change in self.rescales],
        }


def flink_figures(prometheus_url: str, window_ns: tuple[int, int]) -> dict[str, Any]:
    """Flink's own figures over the load window, from the run's Prometheus: per task (the
    chained operators of one vertex) the share of time busy and back-pressured, averaged
    over its subtasks, and the checkpoints completed and their durations."""
    start, end = window_ns
    seconds = max(1, round((end - start) / 1e9))
    at = end / 1e9
    per_task: dict[str, dict[str, float]] = {}
    for key, metric in (
        ("busy", "busyTimeMsPerSecond"),
        ("backpressured", "backPressuredTimeMsPerSecond"),
    ):
        query = (
            f"avg by (task_name) (avg_over_time(flink_taskmanager_job_task_{metric}[{seconds}s]))"
        )
        for labels, value in _instant(prometheus_url, query, at):
            per_task.setdefault(labels.get("task_name", "?"), {})[key] = round(value / 1000, 4)
    completed = _scalar(
        prometheus_url,
        f"max(increase(flink_jobmanager_job_numberOfCompletedCheckpoints[{seconds}s]))",
        at,
    )
    checkpoints = {
        "completed": None if completed is None else round(completed),
        "duration_mean_s": _ms(
            _scalar(
                prometheus_url,
                f"avg(avg_over_time(flink_jobmanager_job_lastCheckpointDuration[{seconds}s]))",
                at,
            )
        ),
        "duration_max_s": _ms(
            _scalar(
                prometheus_url,
                f"max(max_over_time(flink_jobmanager_job_lastCheckpointDuration[{seconds}s]))",
                at,
            )
        ),
        "size_max_bytes": _scalar(
            prometheus_url,
            f"max(max_over_time(flink_jobmanager_job_lastCheckpointSize[{seconds}s]))",
            at,
        ),
    }
    restarts = _scalar(
        prometheus_url, f"max(max_over_time(flink_jobmanager_job_numRestarts[{seconds}s]))", at
    )
    return {"tasks": per_task, "checkpoints": checkpoints, "restarts": restarts}


def _instant(url: str, query: str, at: float) -> list[tuple[dict[str, str], float]]:
    try:
        reply = httpx.get(f"{url}/api/v1/query", params={"query": query, "time": at}, timeout=10)
        result = reply.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return []
    return [(dict(item["metric"]), float(item["value"][1])) for item in result]


def _scalar(url: str, query: str, at: float) -> float | None:
    found = _instant(url, query, at)
    return round(found[0][1], 3) if found else None


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value / 1000, 3)
