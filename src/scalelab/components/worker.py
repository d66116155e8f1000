"""A YOLO inference worker: input topic → ONNX Runtime → output topic.

Offsets are committed only after the results of a batch are acknowledged by
the broker (at-least-once, see `commits`). Frames that do not decode go to the
dead-letter topic with their reason; the worker never dies on bad input. On
SIGTERM, and when partitions are revoked in a rebalance, the pending batch is
finished and committed first; partitions lost because the group fenced this
worker (e.g. it was paused past `session.timeout.ms`) are dropped without a
commit, and the worker rejoins and goes on.

A result the broker refuses stops the worker (exit 1, one log line naming
the topic and the error): retrying a refusal that librdkafka already retried
would not succeed (e.g. a result above the topic's `max.message.bytes`), and
the uncommitted input is redelivered to another member, so the run fails
visibly instead of silently losing a result.

Shutdown is bounded: every wait for outstanding results shares one
`SHUTDOWN_BUDGET_S` deadline, so a worker whose broker is gone still exits.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from scalelab.components import common
from scalelab.components.commits import DeliveryError, PendingCommits
from scalelab.components.producer import producer_config
from scalelab.inference.batching import Batcher
from scalelab.inference.detector import BatchResult, Detector, FrameFailure, FrameResult
from scalelab.spec.loader import load_resolved
from scalelab.spec.models import YoloWorkload

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

log = logging.getLogger("scalelab.worker")
POLL_S = 1.0  # longest consumer poll: delivery reports and SIGTERM are seen at least this often
FLUSH_TIMEOUT_S = 10.0  # longest wait for a batch's acks when partitions are revoked
SHUTDOWN_BUDGET_S = 15.0  # longest wait for acks in total once the worker is stopping
# A member the group no longer counts (fenced) gets these for a commit: its partitions
# already belong to another member, which re-reads from the last committed offset.
FENCED = {
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
}


@dataclass
class WorkerContext:
    name: str
    model: str
    run_id: str
    output_topic: str
    dead_letter_topic: str


def consumer_config(bootstrap: str, group: str, client_id: str = "") -> dict[str, object]:
    """`client_id` names the member in the group's description (run events name the worker)."""
    return {
        "bootstrap.servers": bootstrap,
        "client.id": client_id or "rdkafka",
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
        self.deadline: float | None = None  # set once stopping: flushes share this budget
        self._undelivered = 0  # results still queued at the last flush

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish and commit what we hold before the partitions move to another worker;
        what could not be committed by then is forgotten (the new owner re-reads it)."""
        self.finish()
        self.pending.forget(partitions)

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The group fenced us and gave these partitions away: do not commit (the broker
        would refuse, and it could move the new owner's offsets); drop their pending
        offsets and held frames, which the new owner reads again. We rejoin on next poll."""
        log.warning(
            "%s: partitions lost (the group no longer counts this member), not committed: %s",
            self.ctx.name,
            common.partition_names(partitions),
        )
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self.pending.forget(partitions)
        held = [item for item in self.batcher.flush() if _key(item[0]) not in lost]
        if self.pending.failure is None:
            self.process(held)

    def stop(self) -> None:
        """Start the bounded shutdown: from now on every flush shares one deadline."""
        if self.deadline is None:
            self.deadline = time.monotonic() + SHUTDOWN_BUDGET_S

    def finish(self) -> None:
        """Process what the batcher holds (unless a result was refused), wait a bounded time
        for every result's ack, commit synchronously what is acknowledged."""
        if self.pending.failure is None:
            self.process(self.batcher.flush())
        self.flush_results()
        self.commit_ready(asynchronous=False)

    def flush_results(self) -> int:
        """Wait for outstanding results; returns (and logs) how many are still undelivered."""
        timeout = FLUSH_TIMEOUT_S
        if self.deadline is not None:
            timeout = max(0.0, self.deadline - time.monotonic())
        left = int(self.producer.flush(timeout))
        if left and left != self._undelivered:  # say it once per count, not at every flush
            log.warning(
                "%s: %d results still undelivered after %.1f s; their input offsets stay "
                "uncommitted, so the group redelivers them",
                self.ctx.name,
                left,
                timeout,
            )
        self._undelivered = left
        return left

    def commit_ready(self, asynchronous: bool = True) -> None:
        offsets = self.pending.ready()
        if not offsets:
            return
        try:
            if asynchronous:
                self.consumer.commit(offsets=offsets, asynchronous=True)
                return
            committed = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._commit_refused(exc)
            return
        refused = [tp for tp in committed or [] if tp.error is not None]
        if refused:
            self._commit_refused(KafkaException(refused[0].error))

    def _commit_refused(self, exc: KafkaException) -> None:
        """A refused commit costs duplicates, never a loss: the offsets stay where they were
        and whoever owns the partitions re-reads from there. A fenced member (paused past
        the session timeout, or caught in a rebalance) gets UNKNOWN_MEMBER_ID,
        ILLEGAL_GENERATION or REBALANCE_IN_PROGRESS; it rejoins on its next poll, so
        crashing here would only turn a pause into a dead worker (as confluent-kafka's
        cooperative_consumer example does, we catch it and go on)."""
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        why = "fenced by the group" if error and error.code() in FENCED else "commit failed"
        log.warning("%s: offsets not committed (%s): %s", self.ctx.name, why, exc)

    def poll_once(self) -> None:
        """One step of the loop; raises DeliveryError once a result has been refused.

        The consumer poll is capped at a second so that delivery reports are served (and
        a refusal noticed before more frames are processed) even while a batch waits.
        """
        timeout = self.batcher.time_left()
        message = self.consumer.poll(POLL_S if timeout is None else min(timeout, POLL_S))
        self.producer.poll(0)
        if self.pending.failure is not None:
            raise self.pending.failure
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
        if result.batch_size:
            BATCH.observe(result.batch_size)  # once per inference call, not per frame
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


def _key(message: Message) -> tuple[str, int]:
    return str(message.topic()), int(message.partition() or 0)


def _next_offsets(batch: list[tuple[Message, int]]) -> list[TopicPartition]:
    highest: dict[tuple[str, int], int] = {}
    for message, _ in batch:
        key = _key(message)
        highest[key] = max(highest.get(key, -1), int(message.offset() or 0))
    return [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]


def main() -> None:
    common.setup_logging()
    parser = common.base_parser("scalelab YOLO worker")
    parser.add_argument("--name", required=True)
    parser.add_argument("--model", required=True, help="path to the .onnx model")
    args = parser.parse_args()
    spec = load_resolved(args.spec, args.base_dir)
    stop = common.stop_event()
    common.serve_metrics(args.metrics_port)
    wl = spec.workload
    if not isinstance(wl, YoloWorkload):
        raise SystemExit("the YOLO worker needs a `kind: yolo` workload")
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
    consumer = Consumer(consumer_config(args.bootstrap, worker_group(args.run_id), args.name))
    producer = Producer(producer_config(args.bootstrap))
    worker = Worker(consumer, producer, detector, Batcher(wl.batch_size, wl.max_batch_wait), ctx)
    consumer.subscribe(
        [spec.broker.input_topic], on_revoke=worker.on_revoke, on_lost=worker.on_lost
    )
    READY.set(1)
    sys.exit(run(worker, stop))


def run(worker: Worker, stop: threading.Event) -> int:
    """The worker loop until SIGTERM (exit 0) or a refused result (exit 1, logged)."""
    code = 0
    try:
        while not stop.is_set():
            worker.poll_once()
        log.info("%s: stopping on signal: finishing the held batch", worker.ctx.name)
        worker.stop()
        worker.finish()
    except DeliveryError as exc:
        _log_refusal(worker, exc)
        code = 1
    finally:
        worker.stop()
        worker.consumer.close()  # revokes: finish() commits what is acknowledged, no further
        worker.flush_results()
    if code == 0 and worker.pending.failure is not None:
        _log_refusal(worker, worker.pending.failure)  # refused while finishing at shutdown
        code = 1
    return code


def _log_refusal(worker: Worker, exc: DeliveryError) -> None:
    log.error(
        "%s: stopping: the broker refused a result for topic %s (%s); its input offset "
        "is not committed, so the group redelivers it",
        worker.ctx.name,
        exc.topic,
        exc.error,
    )


if __name__ == "__main__":
    main()
