"""A YOLO inference worker: input topic → ONNX Runtime → output topic.

Offsets are committed only after the results of a batch are acknowledged by
the broker (at-least-once). Frames that do not decode go to the dead-letter
topic with their reason; the worker never dies on bad input. On SIGTERM, and
when partitions are revoked in a rebalance, the pending batch is finished and
committed first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from scalelab.components import common
from scalelab.components.commits import PendingCommits
from scalelab.components.producer import producer_config
from scalelab.inference.batching import Batcher
from scalelab.inference.detector import BatchResult, Detector, FrameFailure, FrameResult
from scalelab.spec.loader import load_resolved

STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
PROCESSED = Counter("scalelab_worker_processed_total", "Frames run through the model")
DEAD = Counter("scalelab_worker_dead_letter_total", "Frames sent to the dead-letter topic")
BATCH = Histogram(
    "scalelab_worker_batch_size", "Frames per inference call", buckets=(1, 2, 4, 8, 16, 32, 64)
)
STAGE = Histogram(
    "scalelab_worker_stage_seconds",
    "Per-frame time of each stage",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
BUSY = Counter("scalelab_worker_busy_seconds_total", "Time spent processing batches")
READY = Gauge("scalelab_worker_ready", "1 once the model is loaded and the consumer subscribed")


@dataclass
class WorkerContext:
    name: str
    model: str
    run_id: str
    output_topic: str
    dead_letter_topic: str


def consumer_config(bootstrap: str, group: str) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 300000,
        "fetch.message.max.bytes": 16 * 1024 * 1024,
        "log_level": 3,
    }


def worker_group(run_id: str) -> str:
    return f"scalelab-workers-{run_id}"


class Worker:
    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        detector: Detector,
        batcher: Batcher[tuple[Message, int]],
        ctx: WorkerContext,
    ):
        self.consumer = consumer
        self.producer = producer
        self.detector = detector
        self.batcher = batcher
        self.ctx = ctx
        self.pending = PendingCommits()

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish and commit what we hold before the partitions move to another worker."""
        self.finish()

    def finish(self) -> None:
        """Process what the batcher holds, wait for every result's ack, commit synchronously."""
        self.process(self.batcher.flush())
        self.producer.flush()
        self.commit_ready(asynchronous=False)

    def commit_ready(self, asynchronous: bool = True) -> None:
        offsets = self.pending.ready()
        if not offsets:
            return
        if asynchronous:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        else:
            self.consumer.commit(offsets=offsets, asynchronous=False)

    def poll_once(self) -> None:
        timeout = self.batcher.time_left()
        message = self.consumer.poll(1.0 if timeout is None else timeout)
        if message is not None and message.error() is None:
            batch = self.batcher.add((message, time.time_ns()))
        else:
            batch = self.batcher.poll()
        if batch:
            self.process(batch)
        self.producer.poll(0)
        self.commit_ready()

    def process(self, batch: list[tuple[Message, int]]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        start_ns = time.time_ns()
        result = self.detector.detect_batch([m.value() or b"" for m, _ in batch])
        done_ns = time.time_ns()
        delivered = self.pending.add(_next_offsets(batch), len(batch))
        for (message, consumed_ns), item in zip(batch, result.items, strict=True):
            if isinstance(item, FrameFailure):
                self._dead_letter(message, item.reason, delivered)
            else:
                self._emit(message, item, result, (consumed_ns, start_ns, done_ns), delivered)
        self.producer.poll(0)
        BUSY.inc(time.perf_counter() - started)

    def _emit(
        self,
        message: Message,
        item: FrameResult,
        result: BatchResult,
        times: tuple[int, int, int],
        delivered: Callable[..., None],
    ) -> None:
        record = output_record(message, item, result.batch_size, self.ctx, times)
        self.producer.produce(
            self.ctx.output_topic,
            key=message.key(),
            value=json.dumps(record).encode(),
            on_delivery=delivered,
        )
        PROCESSED.inc()
        BATCH.observe(result.batch_size)
        for stage in ("decode", "preprocess", "inference", "postprocess"):
            STAGE.labels(stage).observe(getattr(item.timings, f"{stage}_ns") / 1e9)

    def _dead_letter(self, message: Message, reason: str, delivered: Callable[..., None]) -> None:
        original = common.header_dict(message.headers())
        headers: common.Headers = [(k, v.encode()) for k, v in original.items()]
        headers.append((common.H_REASON, reason.encode()))
        self.producer.produce(
            self.ctx.dead_letter_topic,
            key=message.key(),
            value=message.value(),
            headers=headers,
            on_delivery=delivered,
        )
        DEAD.inc()


def output_record(
    message: Message,
    item: FrameResult,
    batch_size: int,
    ctx: WorkerContext,
    times: tuple[int, int, int],
) -> dict[str, object]:
    """One output-topic record (ARCHITECTURE.md): ids, timings in seconds, timestamps in ns."""
    consumed_ns, start_ns, done_ns = times
    headers = common.header_dict(message.headers())
    sent_ns = int(headers.get(common.H_SENT, "0"))
    t = item.timings
    return {
        "id": (message.key() or b"").decode(),
        "run_id": headers.get(common.H_RUN_ID, ctx.run_id),
        "seq": int(headers.get(common.H_SEQ, "-1")),
        "source": headers.get(common.H_SOURCE, ""),
        "worker": ctx.name,
        "model": ctx.model,
        "batch_size": batch_size,
        "partition": message.partition(),
        "offset": message.offset(),
        "intended_ns": int(headers.get(common.H_INTENDED, "0")),
        "sent_ns": sent_ns,
        "consume_ns": consumed_ns,
        "done_ns": done_ns,
        "queue_s": max(0, start_ns - sent_ns) / 1e9,
        "decode_s": t.decode_ns / 1e9,
        "preprocess_s": t.preprocess_ns / 1e9,
        "inference_s": t.inference_ns / 1e9,
        "postprocess_s": t.postprocess_ns / 1e9,
        "detections": len(item.detections),
    }


def _next_offsets(batch: list[tuple[Message, int]]) -> list[TopicPartition]:
    highest: dict[tuple[str, int], int] = {}
    for message, _ in batch:
        key = (str(message.topic()), int(message.partition() or 0))
        highest[key] = max(highest.get(key, -1), int(message.offset() or 0))
    return [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]


def main() -> None:
    parser = common.base_parser("scalelab YOLO worker")
    parser.add_argument("--name", required=True)
    parser.add_argument("--model", required=True, help="path to the .onnx model")
    args = parser.parse_args()
    spec = load_resolved(args.spec, args.base_dir)
    stop = common.stop_event()
    common.serve_metrics(args.metrics_port)
    wl = spec.workload
    detector = Detector(
        args.model,
        wl.threads,
        ["cuda"] if wl.device == "gpu" else None,
        wl.conf_threshold,
        wl.iou_threshold,
        wl.imgsz,
    )
    ctx = WorkerContext(
        args.name, wl.model, args.run_id, spec.broker.output_topic, spec.broker.dead_letter_topic
    )
    consumer = Consumer(consumer_config(args.bootstrap, worker_group(args.run_id)))
    producer = Producer(producer_config(args.bootstrap))
    worker = Worker(consumer, producer, detector, Batcher(wl.batch_size, wl.max_batch_wait), ctx)
    consumer.subscribe([spec.broker.input_topic], on_revoke=worker.on_revoke)
    READY.set(1)
    try:
        while not stop.is_set():
            worker.poll_once()
        worker.finish()
    finally:
        consumer.close()
        producer.flush(10)


if __name__ == "__main__":
    main()
