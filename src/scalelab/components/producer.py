"""The load generator: frames into the input topic on an open-loop schedule.

Every message has an intended send time from the rate profile. The producer
waits for it, never for "1/rate after the last send", so there is no drift;
when it falls behind it sends at once and records the lag instead of quietly
slowing down (coordinated omission). Both times travel in the headers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter, Gauge, Histogram

from scalelab.components import common
from scalelab.load.profiles import make_profile, send_times, target_rate
from scalelab.load.sources import make_source
from scalelab.spec.loader import load_resolved

START_FILE = "producer-start.json"
START_LEAD_NS = 500_000_000
SENT = Counter("scalelab_producer_messages_total", "Messages handed to Kafka")
ACKED = Counter("scalelab_producer_acked_total", "Messages acknowledged by the broker")
BYTES = Counter("scalelab_producer_bytes_total", "Frame bytes acknowledged by the broker")
ERRORS = Counter("scalelab_producer_send_errors_total", "Messages the broker did not take")
TARGET = Gauge("scalelab_producer_target_rate", "Target rate, messages per second")
ACHIEVED = Gauge("scalelab_producer_achieved_rate", "Messages sent in the last second")
LAG = Gauge("scalelab_producer_schedule_lag_seconds", "How late the last send was")
LAG_HIST = Histogram(
    "scalelab_producer_schedule_lag_hist_seconds",
    "Schedule lag of every send",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)


def producer_config(bootstrap: str) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "linger.ms": 2,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "none",
        "queue.buffering.max.kbytes": 1024 * 1024,
        "message.max.bytes": 16 * 1024 * 1024,
        "log_level": 3,
    }


@dataclass
class SendStats:
    """What the producer did, second by second (written to producer.json at the end)."""

    sent: int = 0
    acked: int = 0
    errors: int = 0
    bytes: int = 0
    per_second: dict[int, int] = field(default_factory=dict)
    last_send_ns: int = 0
    lags: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        with self.lock:
            if error is not None:
                self.errors += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append(str(error))
                return
            self.acked += 1
            self.bytes += len(message.value() or b"")

    def record_send(self, second: int, lag: float, sent_ns: int) -> None:
        with self.lock:
            self.sent += 1
            self.last_send_ns = max(self.last_send_ns, sent_ns)
            self.per_second[second] = self.per_second.get(second, 0) + 1
            self.lags.append(lag)


class MetricsPublisher:
    """Moves SendStats into the Prometheus metrics once a second.

    Updating five metrics per message cost the send path about 15 % at high
    rates; plain integers per message and deltas once a second cost nothing.
    """

    def __init__(self, stats: SendStats):
        self.stats = stats
        self.seen = {"sent": 0, "acked": 0, "errors": 0, "bytes": 0, "lags": 0}

    def publish(self) -> int:
        """Push what happened since the last call; returns the messages sent since then."""
        with self.stats.lock:
            now = {
                "sent": self.stats.sent,
                "acked": self.stats.acked,
                "errors": self.stats.errors,
                "bytes": self.stats.bytes,
                "lags": len(self.stats.lags),
            }
            new_lags = self.stats.lags[self.seen["lags"] : now["lags"]]
        delta = {key: now[key] - self.seen[key] for key in now}
        SENT.inc(delta["sent"])
        ACKED.inc(delta["acked"])
        ERRORS.inc(delta["errors"])
        BYTES.inc(delta["bytes"])
        for lag in new_lags:
            LAG_HIST.observe(lag)
        if new_lags:
            LAG.set(new_lags[-1])
        self.seen = now
        return delta["sent"]


class Schedule:
    """The shared, lock-guarded open-loop schedule: (sequence number, intended offset)."""

    def __init__(self, offsets: Iterator[float]):
        self._offsets = enumerate(offsets)
        self._lock = threading.Lock()

    def next(self) -> tuple[int, float] | None:
        with self._lock:
            return next(self._offsets, None)


@dataclass(frozen=True)
class SendContext:
    """What every message of the run carries: where it goes, and the schedule's origin."""

    start_ns: int
    topic: str
    run_id: str
    source: str


def send_loop(
    producer: Producer,
    schedule: Schedule,
    frames: Iterator[bytes],
    frames_lock: threading.Lock,
    ctx: SendContext,
    stats: SendStats,
    stop: threading.Event,
) -> None:
    """One producer thread: wait for each intended time (never sleep past it), then send."""
    start_ns, topic, run_id, source = ctx.start_ns, ctx.topic, ctx.run_id, ctx.source
    while not stop.is_set():
        item = schedule.next()
        if item is None:
            return
        seq, offset = item
        intended = start_ns + int(offset * 1e9)
        _sleep_until(intended, stop)
        with frames_lock:
            frame = next(frames)
        sent = time.time_ns()
        headers: common.Headers = [
            (common.H_RUN_ID, run_id.encode()),
            (common.H_SEQ, str(seq).encode()),
            (common.H_SOURCE, source.encode()),
            (common.H_INTENDED, str(intended).encode()),
            (common.H_SENT, str(sent).encode()),
        ]
        _produce(producer, topic, str(seq).encode(), frame, headers, stats)
        stats.record_send(
            (sent - start_ns) // 1_000_000_000, max(0.0, (sent - intended) / 1e9), sent
        )


def _produce(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes,
    headers: common.Headers,
    stats: SendStats,
) -> None:
    while True:
        try:
            producer.produce(
                topic, value=value, key=key, headers=headers, on_delivery=stats.on_delivery
            )
            producer.poll(0)
            return
        except BufferError:  # local queue full: let deliveries drain, then retry
            producer.poll(0.05)


def _sleep_until(target_ns: int, stop: threading.Event) -> None:
    while not stop.is_set():
        remaining = (target_ns - time.time_ns()) / 1e9
        if remaining <= 0:
            return
        time.sleep(min(remaining, 0.2))


def rate_reporter(
    profile: object, mean_bytes: float, start_ns: int, stats: SendStats, done: threading.Event
) -> None:
    """Update the metrics, the target and the achieved rate once a second (and at the end)."""
    publisher = MetricsPublisher(stats)
    while not done.wait(1.0):
        elapsed = (time.time_ns() - start_ns) / 1e9
        rate = target_rate(profile, max(0.0, elapsed), mean_bytes)  # type: ignore[arg-type]
        TARGET.set(rate or 0.0)
        ACHIEVED.set(publisher.publish())
    publisher.publish()


def summarise(stats: SendStats, start_ns: int, end_ns: int, expected: int) -> dict[str, object]:
    lags = np.asarray(stats.lags) if stats.lags else np.zeros(1)
    return {
        "scheduled": expected,
        "sent": stats.sent,
        "acked": stats.acked,
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "bytes": stats.bytes,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "last_send_ns": stats.last_send_ns,
        "per_second": [
            stats.per_second.get(s, 0) for s in range(max(stats.per_second, default=-1) + 1)
        ],
        "lag_p50_s": float(np.percentile(lags, 50)),
        "lag_p99_s": float(np.percentile(lags, 99)),
        "lag_max_s": float(lags.max()),
    }


def load_phase_rate(offsets: list[float], warmup: float, duration: float) -> float:
    """Messages per second the schedule intends over the load phase (warmup excluded)."""
    intended = sum(1 for t in offsets if warmup <= t < duration)
    return intended / (duration - warmup)


def announce_start(run_dir: Path) -> int:
    """Fix the load's start shortly ahead, once frames and schedule are ready, and tell the run.

    Preparing (drawing and encoding frames, computing the schedule) takes
    seconds; a start time fixed before that would begin the run with a burst
    of late messages.
    """
    start_ns = time.time_ns() + START_LEAD_NS
    tmp = run_dir / f"{START_FILE}.tmp"
    tmp.write_text(json.dumps({"start_ns": start_ns}))
    tmp.replace(run_dir / START_FILE)
    return start_ns


def main() -> None:
    parser = common.base_parser("scalelab load generator")
    args = parser.parse_args()
    spec = load_resolved(args.spec, args.base_dir)
    stop = common.stop_event()
    common.serve_metrics(args.metrics_port)
    source = make_source(spec.source, spec.base_dir)
    profile = make_profile(spec.load, spec.base_dir)
    offsets = list(send_times(profile, source.mean_frame_bytes))
    stats = SendStats()
    producer = Producer(producer_config(args.bootstrap))
    start_ns = announce_start(args.run_dir)
    ctx = SendContext(start_ns, spec.broker.input_topic, args.run_id, source.source_id)
    done = threading.Event()
    reporter = threading.Thread(
        target=rate_reporter,
        daemon=True,
        args=(profile, source.mean_frame_bytes, start_ns, stats, done),
    )
    reporter.start()
    schedule, frames, frames_lock = Schedule(iter(offsets)), source.frames(), threading.Lock()
    threads = [
        threading.Thread(
            target=send_loop, args=(producer, schedule, frames, frames_lock, ctx, stats, stop)
        )
        for _ in range(spec.load.producers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    producer.flush(60)
    done.set()
    reporter.join(5)
    result = summarise(stats, start_ns, time.time_ns(), len(offsets))
    result["target_rate"] = load_phase_rate(offsets, spec.load.warmup, spec.load.duration)
    (args.run_dir / "producer.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
