"""The experiment spec: one pydantic model per section, unknown keys rejected.

Sections follow Theodolite's split between what is deployed (platform, broker,
monitoring, workload) and how it is driven (source, load, slo, repetitions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, TypeAdapter

from scalelab.chaos.spec import ChaosFault
from scalelab.load.config import LoadSpec, SourceSpec
from scalelab.platform.kubernetes.config import KubernetesSpec
from scalelab.spec.autoscale import AutoscalerSpec
from scalelab.spec.section import Section
from scalelab.spec.sweep import SweepSpec
from scalelab.spec.types import DAY, HOUR, Duration, LoadOffset, Seconds


def _default_source() -> SourceSpec:
    return TypeAdapter(SourceSpec).validate_python({"kind": "synthetic"})


class LocalPorts(Section):
    broker: int = Field(0, ge=0, le=65535, description="Kafka client port; 0 picks a free one.")
    controller: int = Field(0, ge=0, le=65535, description="KRaft controller port; 0 = free.")
    broker_metrics: int = Field(0, ge=0, le=65535, description="JMX exporter port; 0 = free.")
    prometheus: int = Field(0, ge=0, le=65535, description="Prometheus HTTP port; 0 = free.")
    node_exporter: int = Field(0, ge=0, le=65535, description="Node exporter port; 0 = free.")


class PlatformSpec(Section):
    kind: Literal["local", "kubernetes"] = Field(
        "local", description="Where components run: processes on this machine, or a cluster."
    )
    ports: LocalPorts = Field(default_factory=LocalPorts, description="Local ports (0 = free).")
    kubeconfig: str | None = Field(None, description="Kubernetes: path to the kubeconfig.")
    context: str | None = Field(None, description="Kubernetes: kubeconfig context to use.")
    namespace: str = Field("scalelab", description="Kubernetes: namespace for the run's objects.")
    kubernetes: KubernetesSpec = Field(
        default_factory=KubernetesSpec,
        description="Kubernetes: image, resources, node roles, autoscaling, chart pins.",
    )


class BrokerSpec(Section):
    partitions: int = Field(2, ge=1, le=10_000, description="Partitions of the input topic.")
    replication: int = Field(1, ge=1, le=32, description="Replication factor of every topic.")
    retention: Seconds = Field(3600, description="Topic retention (e.g. '1h').")
    storage: Literal["fresh", "reuse"] = Field(
        "fresh", description="'fresh' formats the KRaft log per run; 'reuse' keeps it."
    )
    heap_mb: int = Field(512, ge=128, le=1_048_576, description="JVM heap of the broker in MiB.")
    bootstrap: str | None = Field(
        None, description="Use an existing Kafka cluster at this address instead of starting one."
    )
    input_topic: str = Field("scalelab.input", description="Topic the producer writes frames to.")
    output_topic: str = Field("scalelab.output", description="Topic workers write results to.")
    dead_letter_topic: str = Field(
        "scalelab.dead-letter", description="Topic for frames that cannot be decoded."
    )


class MetricQuery(Section):
    name: str = Field(description="Name of the exported series.")
    query: str = Field(description="PromQL expression.")
    step: Annotated[float, Duration(maximum=DAY)] | None = Field(
        None, description="Resolution (at most a day); defaults to the scrape interval."
    )


class MonitoringSpec(Section):
    scrape_interval: Annotated[float, Duration(maximum=HOUR)] = Field(
        1, description="How often Prometheus scrapes every target (at most 1 h)."
    )
    retention: Seconds = Field(15 * 86400, description="How long local Prometheus keeps data.")
    node_exporter: bool = Field(True, description="Run the node exporter (host CPU, memory).")
    metrics: list[MetricQuery] | None = Field(
        None, description="Metric profile to export; default: every series scraped in the run."
    )


class YoloWorkload(Section):
    kind: Literal["yolo"] = Field("yolo", description="YOLO detection on ONNX Runtime.")
    model: str = Field(
        "yolov8n",
        description="A built-in demo model name (built offline once) or a path to .onnx/.pt.",
    )
    workers: int = Field(2, ge=1, le=256, description="Worker processes in one consumer group.")
    threads: int = Field(1, ge=1, le=256, description="ONNX Runtime intra-op threads per worker.")
    batch_size: int = Field(1, ge=1, le=256, description="Frames per inference call.")
    max_batch_wait: Annotated[float, Duration(maximum=60, allow_zero=True)] = Field(
        0.05, description="Longest wait for a batch to fill before running a partial one."
    )
    imgsz: int | None = Field(
        None,
        ge=32,
        le=8192,
        description="Model input size (square, multiple of 32); unset: the model's own `imgsz` "
        "metadata, or 640 when it has none.",
    )
    conf_threshold: float = Field(0.25, ge=0, le=1, description="Detection score threshold.")
    iou_threshold: float = Field(0.45, ge=0, le=1, description="NMS IoU threshold.")
    device: Literal["cpu", "gpu"] = Field("cpu", description="Execution provider.")
    drain_timeout: Annotated[float, Duration(maximum=DAY)] = Field(
        60, description="After load, wait at most this long for the consumer lag to reach zero."
    )


class FlinkJar(Section):
    """A user's own Flink job: a jar, its entry class and its program arguments."""

    jar: str = Field(description="Path to the job's jar (relative to the spec file).")
    entry_class: str = Field(description="Fully qualified main class of the job.")
    args: list[str] = Field(default_factory=list, description="Program arguments, as given.")


class FramesWork(Section):
    """What the `frames` job does per frame: decode, burn CPU, sleep (a model-server call)."""

    decode: bool = Field(
        True, description="Decode every frame (JPEG or raw); undecodable ones are dead-lettered."
    )
    burn: Annotated[float, Duration(maximum=60, allow_zero=True)] = Field(
        0, description="CPU burned per frame (busy Fibonacci), e.g. '5ms'."
    )
    sleep: Annotated[float, Duration(maximum=60, allow_zero=True)] = Field(
        0, description="Sleep per frame, standing for a call to a model server."
    )


class JoinWork(Section):
    """Scalehub's join: two keyed streams joined in tumbling event-time windows."""

    window: Annotated[float, Duration(maximum=HOUR)] = Field(1, description="Tumbling window.")
    lateness: Annotated[float, Duration(maximum=HOUR, allow_zero=True)] = Field(
        0.5, description="Watermark delay: how late a record may arrive and still join."
    )
    fibonacci: int = Field(
        20, ge=0, le=40, description="CPU burn per joined pair: the n-th Fibonacci, naively."
    )
    keys: int = Field(100, ge=1, le=1_000_000, description="Distinct sensor keys produced.")
    second_topic: str = Field(
        "scalelab.input-b",
        description="The join's second input topic (the first is broker.input_topic).",
    )


class ParallelismStep(Section):
    """One step of a parallelism schedule: from `at` seconds into the load, run at `parallelism`."""

    at: LoadOffset = Field(description="When, in seconds after the load starts.")
    parallelism: int = Field(ge=1, le=1024, description="The job's parallelism from then on.")


class StepStrategy(Section):
    """Scalehub's step strategies: the parallelism changes every `every` seconds of the load,
    from `workload.parallelism` up to `max`. linear: + `step`; exponential: × `factor`;
    block: + `step`, each level held for `hold` intervals."""

    kind: Literal["linear", "exponential", "block"] = Field(description="How each step grows.")
    every: Annotated[float, Duration(maximum=DAY)] = Field(description="Time between steps.")
    max: int = Field(ge=1, le=1024, description="Highest parallelism; the steps stop there.")
    step: int = Field(1, ge=1, le=1024, description="linear, block: parallelism added.")
    factor: int = Field(2, ge=2, le=16, description="exponential: parallelism multiplied.")
    hold: int = Field(2, ge=1, le=100, description="block: intervals each level is held.")

    def steps(self, start: int, duration: float) -> list[ParallelismStep]:
        """The schedule this strategy gives within a load of `duration` seconds."""
        out, level, interval = [], start, 1
        while interval * self.every < duration and level < self.max:
            if self.kind == "exponential":
                level = min(self.max, level * self.factor)
            elif self.kind == "linear" or interval % self.hold == 0:
                level = min(self.max, level + self.step)
            else:
                interval += 1
                continue
            out.append(ParallelismStep(at=interval * self.every, parallelism=level))
            interval += 1
        return out


class FlinkWorkload(Section):
    kind: Literal["flink"] = Field(description="A Flink job on a Flink cluster scalelab starts.")
    job: Literal["frames", "join"] | FlinkJar = Field(
        "frames",
        description="'frames' (scalelab's frame-processing job), 'join' (Scalehub's windowed "
        "join), or a user's {jar, entry_class, args}.",
    )
    parallelism: int = Field(1, ge=1, le=1024, description="The job's parallelism at the start.")
    max_parallelism: int = Field(
        128, ge=1, le=32768, description="Upper bound of any rescale (key groups)."
    )
    taskmanagers: int = Field(1, ge=1, le=64, description="TaskManager processes.")
    slots_per_taskmanager: int = Field(2, ge=1, le=64, description="Task slots per TaskManager.")
    taskmanager_heap_mb: int = Field(
        256, ge=64, le=1_048_576, description="Task heap of each TaskManager in MiB."
    )
    jobmanager_heap_mb: int = Field(
        256, ge=128, le=1_048_576, description="Heap of the JobManager in MiB."
    )
    checkpoint_interval: Annotated[float, Duration(maximum=HOUR)] = Field(
        2, description="Checkpoint interval; input offsets are committed on each checkpoint."
    )
    delivery: Literal["at-least-once", "exactly-once"] = Field(
        "at-least-once",
        description="Sink guarantee; exactly-once writes in Kafka transactions (read_committed).",
    )
    rescale: Literal["adaptive", "savepoint"] = Field(
        "adaptive",
        description="How the parallelism changes: the adaptive scheduler's resource "
        "requirements, or stop-with-savepoint and resubmit.",
    )
    rescale_cooldown: Annotated[float, Duration(maximum=HOUR, allow_zero=True)] = Field(
        30, description="Adaptive scheduler: shortest time between two rescales (Flink: 30 s)."
    )
    schedule: list[ParallelismStep] = Field(
        default_factory=list, description="Parallelism changes during the load, by hand."
    )
    strategy: StepStrategy | None = Field(
        None, description="Parallelism changes from a Scalehub step strategy (not with schedule)."
    )
    work: FramesWork = Field(default_factory=FramesWork, description="The `frames` job's work.")
    join: JoinWork = Field(default_factory=JoinWork, description="The `join` job's settings.")
    drain_timeout: Annotated[float, Duration(maximum=DAY)] = Field(
        60, description="After load, wait at most this long for the consumer lag to reach zero."
    )

    @property
    def slots(self) -> int:
        return self.taskmanagers * self.slots_per_taskmanager

    def planned_steps(self, duration: float) -> list[ParallelismStep]:
        """The parallelism changes of a load of `duration` s: the strategy's, or the schedule."""
        if self.strategy is not None:
            return self.strategy.steps(self.parallelism, duration)
        return sorted(self.schedule, key=lambda step: step.at)


def _workload_kind(value: Any) -> str:
    """The union's tag: `kind`, where a spec without one means YOLO (every older spec)."""
    if isinstance(value, dict):
        return str(value.get("kind", "yolo"))
    return str(getattr(value, "kind", "yolo"))


Workload = Annotated[
    Annotated[YoloWorkload, Tag("yolo")] | Annotated[FlinkWorkload, Tag("flink")],
    Discriminator(_workload_kind),
]
"""What processes the frames: YOLO workers, or a Flink job (`kind: flink`)."""


Ceiling = Annotated[float, Duration(maximum=DAY)]
"""A latency ceiling in seconds: positive, at most a day."""


class SloSpec(Section):
    """What a run must show, and the evidence it needs before its figures count."""

    latency_p99: Ceiling | None = Field(None, description="End-to-end p99 latency ceiling.")
    latency_p95: Ceiling | None = Field(None, description="End-to-end p95 latency ceiling.")
    min_throughput_ratio: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Completed/offered rate in the load phase below which the SLO is missed.",
    )
    min_load_duration: LoadOffset = Field(
        30,
        description="A load phase (duration minus warmup) shorter than this makes the run "
        "INVALID: too short to support its figures. Lower it for a short smoke test.",
    )
    min_samples: int = Field(
        100,
        ge=0,
        le=1_000_000_000,
        description="Fewest messages completed in the load phase for a latency-percentile "
        "claim; with fewer, the run is INVALID.",
    )
    max_rate_error: float = Field(
        0.02, ge=0, le=1, description="Largest |achieved-target|/target for a VALID run."
    )
    max_foreign_cpu: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the host's busy CPU-seconds during load not used by the run's "
        "own processes above which the run is INVALID (above 0.10 it is a warning).",
    )


class FaultSpec(Section):
    """A fault injected on purpose during the load phase (failure experiments)."""

    kind: Literal["kill-worker", "kill-taskmanager"] = Field(
        description="'kill-worker': SIGKILL one worker; the others must take over its partitions. "
        "'kill-taskmanager' (Flink): SIGKILL one TaskManager; the job restarts from its last "
        "checkpoint on the TaskManagers left (or a replacement scalelab starts)."
    )
    at: LoadOffset = Field(description="When, in seconds after the load starts.")
    worker: int = Field(
        0, ge=0, le=255, description="Index of the worker (or TaskManager) to kill."
    )


class ExperimentSpec(Section):
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Experiment name: lowercase letters, digits and '-', used in the run id.",
    )
    description: str = Field("", description="Free text kept in the run record.")
    platform: PlatformSpec = Field(default_factory=PlatformSpec)
    broker: BrokerSpec = Field(default_factory=BrokerSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    workload: Workload = Field(default_factory=YoloWorkload)
    source: SourceSpec = Field(
        default_factory=lambda: _default_source(), description="Where frames come from."
    )
    load: LoadSpec = Field(description="The rate profile the producer follows.")
    slo: SloSpec = Field(default_factory=SloSpec)
    faults: list[FaultSpec] = Field(
        default_factory=list, description="Faults to inject during the load phase."
    )
    chaos: list[ChaosFault] = Field(
        default_factory=list,
        description="Faults with a window (pause a worker, restart the broker, CPU stress, "
        "network delay/loss/bandwidth, failing output), each recorded as an event.",
    )
    autoscaler: AutoscalerSpec | None = Field(
        None,
        description="Scale the YOLO workers during the run with a named policy "
        "(hpa, ds2, transscale, threshold, schedule); every decision goes to decisions.parquet.",
    )
    repetitions: int = Field(1, ge=1, le=1000, description="How many times the run is repeated.")
    sweep: SweepSpec | None = Field(
        None, description="Parameters to vary: `scalelab sweep` runs every combination."
    )
    base_dir: Path | None = Field(
        None, exclude=True, description="Directory of the spec file (relative paths resolve here)."
    )


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_json_schema() -> dict[str, Any]:
    """The spec's JSON Schema in standard Draft 2020-12 keywords, for editors and validators.

    Durations accept the same numbers and unit strings as the loader, so every
    spec in `examples/` validates against it with a stock validator.
    """
    return {"$schema": JSON_SCHEMA_DIALECT, **ExperimentSpec.model_json_schema()}
