"""The QoS tracker: output topic → latency metrics and `qos.parquet`.

End-to-end latency runs from the message's *intended* send time to the
worker's done time, so a producer that falls behind cannot hide latency. On
SIGTERM the tracker reads on until it has reached the output topic's end
offsets as they were at that moment, so the tail of the run is never lost.

Only this run's records count: an output record whose `run_id` is not the
tracker's own (an earlier run's, on a reused topic) is dropped and counted.
At exit the tracker writes `tracker.json` in the run directory:
`{"drained": bool, "behind": int, "foreign_records": int}`; `drained` is false
when the final read did not reach the topic's end in time, with `behind` the
records left unread (-1 when the broker could not even say where the end is).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Histogram

from scalelab.analysis.qos_schema import QOS_SCHEMA
from scalelab.components import common
from scalelab.components.worker import consumer_config
from scalelab.spec.loader import load_resolved

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60)
STAGES = ("queue", "decode", "preprocess", "inference", "postprocess")
E2E = Histogram(
    "scalelab_tracker_latency_seconds",
    "End-to-end latency from intended send time",
    ["worker"],
    buckets=LATENCY_BUCKETS,
)
STAGE = Histogram(
    "scalelab_tracker_stage_seconds",
    "Per-stage time reported by workers",
    ["worker", "stage"],
    buckets=LATENCY_BUCKETS,
)
RECORDS = Counter("scalelab_tracker_records_total", "Output records seen", ["worker"])

FLUSH_ROWS = 2000
FLUSH_SECONDS = 2.0
DRAIN_TIMEOUT_S = 60.0
TRACKER_FILE = "tracker.json"
UNKNOWN = -1  # `behind` when the end offsets could not be read

log = logging.getLogger("scalelab.tracker")


class QosWriter:
    """Streams rows into Parquet in row groups; `close()` writes the footer."""

    def __init__(self, path: Path):
        self.writer = pq.ParquetWriter(path, QOS_SCHEMA, compression="zstd")
        self.rows: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS or time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=QOS_SCHEMA))
            self.rows = []
        self.last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def qos_row(record: dict[str, Any], tracked_ns: int) -> dict[str, Any]:
    row = {name: record.get(name) for name in QOS_SCHEMA.names}
    row["tracked_ns"] = tracked_ns
    row["latency_s"] = (record["done_ns"] - record["intended_ns"]) / 1e9
    return row


def observe(row: dict[str, Any]) -> None:
    worker = str(row["worker"])
    E2E.labels(worker).observe(row["latency_s"])
    RECORDS.labels(worker).inc()
    for stage in STAGES:
        STAGE.labels(worker, stage).observe(row[f"{stage}_s"])


@dataclass
class Tally:
    """Records of other runs (or not records at all) that the tracker dropped."""

    run_id: str
    foreign: int = 0


def handle(message: Message, writer: QosWriter, tally: Tally) -> None:
    try:
        record = json.loads(message.value() or b"")
        if not isinstance(record, dict) or record.get("run_id") != tally.run_id:
            raise ValueError("not this run's record")
        row = qos_row(record, time.time_ns())
    except (ValueError, KeyError, TypeError):
        tally.foreign += 1  # the accounting counts output records from offsets, not from us
        return
    writer.add(row)
    observe(row)


def end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in partitions
    }


def start_offsets(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, int]:
    """Where reading starts in each partition: the group's committed offset (the
    orchestrator commits the end at run start), else the partition's beginning."""
    committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    starts = {tp.partition: tp.offset for tp in committed}
    for p in partitions:
        if starts.get(p, -1) < 0:
            starts[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0]
    return starts


def behind(consumer: Consumer, targets: dict[int, int], starts: dict[int, int], topic: str) -> int:
    """Records between where we are and `targets`; a partition we have not read from
    yet (position unknown) counts from its start offset."""
    positions = consumer.position([TopicPartition(topic, p) for p in targets])
    done = {tp.partition: tp.offset for tp in positions}
    return sum(
        max(0, end - (done[p] if done.get(p, -1) >= 0 else starts.get(p, 0)))
        for p, end in targets.items()
    )


def drain_to_end(
    consumer: Consumer, writer: QosWriter, topic: str, tally: Tally, timeout: float
) -> int:
    """Read up to the end offsets as of now; returns the records still unread (0: drained)."""
    targets = end_offsets(consumer, topic)
    starts = start_offsets(consumer, topic, list(targets))
    deadline = time.monotonic() + timeout
    left = behind(consumer, targets, starts, topic)
    while left and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            handle(message, writer, tally)
        left = behind(consumer, targets, starts, topic)
    return left


def final_drain(
    consumer: Consumer, writer: QosWriter, topic: str, tally: Tally, timeout: float
) -> int:
    """`drain_to_end`, saying loudly when it gives up (the summary would miss records)."""
    try:
        left = drain_to_end(consumer, writer, topic, tally, timeout)
    except KafkaException as exc:
        log.error("tracker: final drain of %s failed, records may be missing: %s", topic, exc)
        return UNKNOWN
    if left:
        log.error(
            "tracker: final drain of %s gave up after %g s with %d records unread; "
            "qos.parquet misses them",
            topic,
            timeout,
            left,
        )
    return left


def write_outcome(run_dir: Path, behind: int, tally: Tally) -> None:
    """tracker.json (team contract 4), read by the orchestrator's accounting."""
    outcome = {"drained": behind == 0, "behind": behind, "foreign_records": tally.foreign}
    (run_dir / TRACKER_FILE).write_text(json.dumps(outcome))


def main() -> None:
    common.setup_logging()
    parser = common.base_parser("scalelab QoS tracker")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=DRAIN_TIMEOUT_S,
        help="longest final read to the output topic's end after SIGTERM, in seconds",
    )
    args = parser.parse_args()
    spec = load_resolved(args.spec, args.base_dir)
    stop = common.stop_event()
    common.serve_metrics(args.metrics_port)
    topic = spec.broker.output_topic
    consumer = Consumer(consumer_config(args.bootstrap, f"scalelab-tracker-{args.run_id}"))
    consumer.subscribe([topic])
    writer = QosWriter(args.run_dir / "qos.parquet")
    tally = Tally(args.run_id)
    left = UNKNOWN
    try:
        while not stop.is_set():
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                handle(message, writer, tally)
            writer.flush() if time.monotonic() - writer.last_flush > FLUSH_SECONDS else None
        left = final_drain(consumer, writer, topic, tally, args.drain_timeout)
    finally:
        writer.close()
        write_outcome(args.run_dir, left, tally)
        consumer.close()


if __name__ == "__main__":
    main()
