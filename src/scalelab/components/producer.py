"""The load generator: frames into the input topic on an open-loop schedule.

Every message has an intended send time from the rate profile. The producer
waits for it, never for "1/rate after the last send", so there is no drift;
when it falls behind it sends at once and records the lag instead of quietly
slowing down (coordinated omission). Both times travel in the headers.

Pacing runs on the monotonic clock: the wall clock is read once, when the
start is fixed, and every later time is that reading plus monotonic time
elapsed, so a step of the host's clock (NTP) neither stalls nor bursts the
load (`pacing.py`). The schedule is a generator: a spec of 10^12 messages starts at once
and costs no memory. Lags go into a fixed-size histogram (`lag_histogram.py`).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily

from scalelab.components import common
from scalelab.components.lag_histogram import LagHistogram
from scalelab.components.pacing import PacingClock
from scalelab.errors import ScalelabError
from scalelab.load.profile_base import RateProfile
from scalelab.load.profiles import make_profile, messages_before, send_times, target_rate
from scalelab.load.sources import make_source
from scalelab.spec.loader import load_resolved

START_FILE = "producer-start.json"
START_LEAD_NS = 500_000_000
FLUSH_TIMEOUT_S = 60.0
"""Longest wait, once the schedule is done, for the broker to acknowledge what was sent."""
STOP_FLUSH_TIMEOUT_S = 5.0
"""Longest wait once SIGTERM or SIGINT arrived: the platform kills a component that is
still there 10 s after asking it to stop, and a broker that is gone never answers."""
LAG_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
"""Upper bounds of the schedule-lag histogram served to Prometheus."""
SENT = Counter("scalelab_producer_messages_total", "Messages handed to Kafka")
ACKED = Counter("scalelab_producer_acked_total", "Messages acknowledged by the broker")
BYTES = Counter("scalelab_producer_bytes_total", "Frame bytes acknowledged by the broker")
ERRORS = Counter("scalelab_producer_send_errors_total", "Messages the broker did not take")
TARGET = Gauge("scalelab_producer_target_rate", "Target rate, messages per second")
ACHIEVED = Gauge("scalelab_producer_achieved_rate", "Messages sent in the last second")
LAG = Gauge("scalelab_producer_schedule_lag_seconds", "How late the last send was")


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


LOAD_PRODUCER_OVERRIDES: dict[str, object] = {
    "delivery.report.only.error": True,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 32 * 1024,
}
"""The load generator's own client settings, on top of `producer_config`.

Only failed deliveries are reported: a report per message made the client
build a Python message (a copy of the frame, key and headers) and call back
into Python for every acknowledgement, a third of the send path's CPU; what
was acknowledged is what was sent, less the errors, less what is still
pending (`len(producer)`). The local queue holds at most 32 MiB (the Java
client's `buffer.memory`) and 10^6 messages: a sender far ahead of the broker
made a 1 GiB queue grow to hundreds of MB of fresh memory, and 40 kB frames
cost 1.5-3x the CPU per message; a full queue makes the sender wait (and stamp
`sent_ns` when the message is taken), not the broker."""
POLL_EVERY = 64
"""Serve the client's callbacks every this many sends (and before every wait)."""
TALLY_EVERY = 64
"""Hand a thread's sends to the shared statistics every this many sends (and before every wait)."""


def load_producer_config(bootstrap: str) -> dict[str, object]:
    """The load generator's client: `producer_config` plus `LOAD_PRODUCER_OVERRIDES`."""
    return {**producer_config(bootstrap), **LOAD_PRODUCER_OVERRIDES}


class UndeliveredError(ScalelabError):
    """Messages the broker had not acknowledged when the final flush gave up."""

    def __init__(self, undelivered: int, sent: int):
        self.undelivered = undelivered
        self.sent = sent
        super().__init__(
            f"{undelivered} of {sent} messages were not delivered when the final flush timed out"
        )


# -- what was sent --------------------------------------------------------------------------
@dataclass
class SendStats:
    """What the producer did (written to producer.json at the end).

    Lags of the load phase and of the rest (warmup) are kept apart: the
    percentiles in producer.json cover the load phase only.
    """

    sent: int = 0
    acked: int = 0
    errors: int = 0
    bytes: int = 0
    sent_bytes: int = 0
    error_bytes: int = 0
    load_sent: int = 0
    load_first_send_ns: int = 0
    load_first_cpu_s: float = 0.0
    per_second: dict[int, int] = field(default_factory=dict)
    last_send_ns: int = 0
    last_lag_ns: int = 0
    load_lags: LagHistogram = field(default_factory=LagHistogram)
    other_lags: LagHistogram = field(default_factory=LagHistogram)
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        """A delivery report: with `delivery.report.only.error`, only failures come here."""
        with self.lock:
            if error is not None:
                self.errors += 1
                self.error_bytes += len(message.value() or b"")
                if len(self.error_samples) < 10:
                    self.error_samples.append(str(error))
                return
            self.acked += 1
            self.bytes += len(message.value() or b"")

    def settle(self, pending: int) -> None:
        """Acknowledged = sent - errors - still pending, when successes are not reported.

        Bytes: those of the pending messages are taken at the mean frame size
        until nothing is pending, then exact.
        """
        with self.lock:
            self.acked = max(self.acked, self.sent - self.errors - pending)
            mean = self.sent_bytes / self.sent if self.sent else 0
            pending_bytes = round(pending * mean)
            self.bytes = max(self.bytes, self.sent_bytes - self.error_bytes - pending_bytes)

    def record_sends(self, sends: list[int], in_load: bool) -> None:
        """Record a thread's sends, flat `[second, lag_ns, sent_ns, bytes, ...]`, one lock."""
        lags = self.load_lags if in_load else self.other_lags
        with self.lock:
            per_second = self.per_second
            for i in range(0, len(sends), 4):
                second = sends[i]
                per_second[second] = per_second.get(second, 0) + 1
                lags.add(sends[i + 1])
                self.sent_bytes += sends[i + 3]
            n = len(sends) // 4
            self.sent += n
            if in_load:
                self.load_sent += n
            if n:
                self.last_lag_ns = sends[-3]
                self.last_send_ns = max(self.last_send_ns, sends[-2])

    def record_send(self, second: int, lag_ns: int, sent_ns: int, in_load: bool) -> None:
        with self.lock:
            self.sent += 1
            if sent_ns > self.last_send_ns:
                self.last_send_ns = sent_ns
            self.per_second[second] = self.per_second.get(second, 0) + 1
            self.last_lag_ns = lag_ns
            if in_load:
                self.load_sent += 1
                self.load_lags.add(lag_ns)
            else:
                self.other_lags.add(lag_ns)


class MetricsPublisher:
    """Moves SendStats into the Prometheus metrics once a second.

    Updating five metrics per message cost the send path about 15 % at high
    rates; plain integers per message and deltas once a second cost nothing.
    """

    def __init__(self, stats: SendStats, pending: Callable[[], int] | None = None):
        self.stats = stats
        self.pending = pending
        self.seen = {"sent": 0, "acked": 0, "errors": 0, "bytes": 0}

    def publish(self) -> int:
        """Push what happened since the last call; returns the messages sent since then."""
        if self.pending is not None:
            self.stats.settle(self.pending())
        with self.stats.lock:
            now = {
                "sent": self.stats.sent,
                "acked": self.stats.acked,
                "errors": self.stats.errors,
                "bytes": self.stats.bytes,
            }
            last_lag_ns = self.stats.last_lag_ns
        delta = {key: now[key] - self.seen[key] for key in now}
        SENT.inc(delta["sent"])
        ACKED.inc(delta["acked"])
        ERRORS.inc(delta["errors"])
        BYTES.inc(delta["bytes"])
        if delta["sent"]:
            LAG.set(last_lag_ns / 1e9)
        self.seen = now
        return delta["sent"]


class LagCollector:
    """Serves every send's schedule lag as a Prometheus histogram, read at scrape time."""

    name = "scalelab_producer_schedule_lag_hist_seconds"

    def __init__(self, stats: SendStats):
        self.stats = stats

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self.stats.lock:
            lags = self.stats.load_lags.merged(self.stats.other_lags)
        yield HistogramMetricFamily(
            self.name,
            "Schedule lag of every send (bucket bounds to 0.8 %)",
            buckets=lags.cumulative(LAG_BUCKETS_S),
            sum_value=lags.sum_ns / 1e9,
        )


# -- the schedule ---------------------------------------------------------------------------
class Schedule:
    """The shared, lock-guarded open-loop schedule: (sequence number, intended offset).

    Drawn lazily from a generator; it counts as it goes where the load phase
    (`warmup` onwards) begins and how many messages there were in all.
    """

    def __init__(self, offsets: Iterable[float], warmup: float = 0.0):
        self.warmup = warmup
        self._offsets = iter(offsets)
        self._lock = threading.Lock()
        self.drawn = 0
        self.load_seq_start: int | None = None
        self.exhausted = False

    def next(self) -> tuple[int, float] | None:
        with self._lock:
            offset = next(self._offsets, None)
            if offset is None:
                self.exhausted = True
                return None
            seq = self.drawn
            self.drawn = seq + 1
            if self.load_seq_start is None and offset >= self.warmup:
                self.load_seq_start = seq
            return seq, offset


@dataclass(frozen=True)
class LoadBounds:
    """Sequence numbers [start, end) whose intended offset lies in the load phase.

    `counted` is true when the whole schedule was drawn; a producer stopped
    early takes the counts from the profile (exact except for Poisson).
    """

    start: int
    end: int
    counted: bool


def load_bounds(schedule: Schedule, profile: RateProfile, mean_bytes: float | None) -> LoadBounds:
    """The load phase's sequence numbers, counted while sending, or from the profile."""
    if schedule.exhausted:
        first = schedule.load_seq_start
        return LoadBounds(schedule.drawn if first is None else first, schedule.drawn, True)
    start = schedule.load_seq_start
    if start is None:
        start = max(messages_before(profile, profile.warmup, mean_bytes), schedule.drawn)
    end = max(messages_before(profile, profile.duration, mean_bytes), start, schedule.drawn)
    return LoadBounds(start, end, False)


# -- sending --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendContext:
    """What every message of the run carries: where it goes, and the schedule's origin.

    `start_ns` is a `clock.now_ns()` reading (UTC epoch ns).
    """

    start_ns: int
    topic: str
    run_id: str
    source: str
    clock: PacingClock = field(default_factory=PacingClock)


def send_loop(
    producer: Producer,
    schedule: Schedule,
    frames: Iterator[bytes],
    frames_lock: threading.Lock,
    ctx: SendContext,
    stats: SendStats,
    stop: threading.Event,
) -> None:
    """One producer thread: wait for each intended time (never sleep past it), then send.

    Waits run on the monotonic clock; `shift` turns its readings into UTC epoch ns.
    The per-message path does only what each message needs (its three
    timestamp/sequence headers, the produce call, four integers for the
    statistics); callbacks are served and statistics handed over every
    `POLL_EVERY`/`TALLY_EVERY` sends and before every wait, so a paced
    producer reports each send before it sleeps.
    """
    clock, topic, start_ns, warmup = ctx.clock, ctx.topic, ctx.start_ns, schedule.warmup
    monotonic_ns, shift = clock.monotonic_ns, clock.shift_ns
    start_mono = start_ns - shift
    run_header = (common.H_RUN_ID, ctx.run_id.encode())
    source_header = (common.H_SOURCE, ctx.source.encode())
    key_prefix = f"{ctx.run_id}:".encode()
    tally = _Tally(stats)
    produce, poll, on_delivery = producer.produce, producer.poll, stats.on_delivery
    try:
        while not stop.is_set():
            item = schedule.next()
            if item is None:
                return
            seq, offset = item
            due = start_mono + int(offset * 1e9)
            now = monotonic_ns()
            if now < due:
                tally.flush()
                poll(0)
                _sleep_until(due, stop, clock)
                if stop.is_set():
                    return  # stopped while waiting: not due yet, never send it early
                now = monotonic_ns()
            with frames_lock:
                frame = next(frames)
            sent, intended, seq_text = now + shift, due + shift, b"%d" % seq
            headers: common.Headers = [
                run_header,
                (common.H_SEQ, seq_text),
                source_header,
                (common.H_INTENDED, b"%d" % intended),
                (common.H_SENT, b"%d" % sent),
            ]
            key = key_prefix + seq_text
            try:
                produce(topic, frame, key, headers=headers, on_delivery=on_delivery)
            except BufferError:  # local queue full: let deliveries drain, then retry
                tally.flush()
                taken = _produce_when_room(producer, topic, key, frame, headers, ctx, stats, stop)
                if taken is None:
                    return
                sent = taken
            in_load = offset >= warmup
            if in_load is not tally.in_load:
                tally.switch(in_load, sent)
            tally.add((sent - start_ns) // 1_000_000_000, sent - intended, sent, len(frame))
            if tally.count >= TALLY_EVERY:
                tally.flush()
                poll(0)
    finally:
        tally.flush()


class _Tally:
    """A thread's sends not yet handed to SendStats (one lock per batch, not per message)."""

    def __init__(self, stats: SendStats):
        self.stats = stats
        self.sends: list[int] = []
        self.count = 0
        self.in_load = False

    def add(self, second: int, lag_ns: int, sent_ns: int, size: int) -> None:
        self.sends += (second, lag_ns, sent_ns, size)
        self.count += 1

    def switch(self, in_load: bool, sent_ns: int) -> None:
        """The send about to be added starts (or leaves) the load phase."""
        self.flush()
        self.in_load = in_load
        stats = self.stats
        if in_load and not stats.load_first_send_ns:
            with stats.lock:
                stats.load_first_send_ns = sent_ns
                stats.load_first_cpu_s = time.process_time()

    def flush(self) -> None:
        if self.count:
            self.stats.record_sends(self.sends, self.in_load)
            self.sends = []
            self.count = 0


def _produce_when_room(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes,
    headers: common.Headers,
    ctx: SendContext,
    stats: SendStats,
    stop: threading.Event,
) -> int | None:
    """Hand one message to Kafka once its local queue has room; its actual send time then.

    The `sent_ns` header (the last one) is stamped again at each try, so it says
    when the client took the message. None if told to stop first.
    """
    while True:
        if stop.is_set():
            return None
        producer.poll(0.005)
        sent = ctx.clock.now_ns()
        headers[-1] = (common.H_SENT, b"%d" % sent)
        try:
            producer.produce(
                topic, value=value, key=key, headers=headers, on_delivery=stats.on_delivery
            )
            return sent
        except BufferError:
            pass


def _sleep_until(target_mono_ns: int, stop: threading.Event, clock: PacingClock) -> None:
    while not stop.is_set():
        remaining = (target_mono_ns - clock.monotonic_ns()) / 1e9
        if remaining <= 0:
            return
        clock.sleep(min(remaining, 0.2))


def flush(producer: Producer, stop: threading.Event) -> int:
    """Wait for the broker's acknowledgements, within bounds; returns how many never came.

    At most FLUSH_TIMEOUT_S, and at most STOP_FLUSH_TIMEOUT_S once stop is set
    (a broker that is gone would hold the process for librdkafka's message
    timeout, minutes). What is left is purged, so closing the client does not
    wait for it either; the purged messages count as send errors.
    """
    deadline, stopping = time.monotonic() + FLUSH_TIMEOUT_S, False
    remaining = len(producer)
    while remaining:
        now = time.monotonic()
        if stop.is_set() and not stopping:
            deadline, stopping = min(deadline, now + STOP_FLUSH_TIMEOUT_S), True
        if now >= deadline:
            break
        remaining = producer.flush(min(0.5, deadline - now))
    if remaining:
        producer.purge()
        producer.poll(0)
    return remaining


def rate_reporter(
    profile: RateProfile,
    mean_bytes: float | None,
    ctx: SendContext,
    stats: SendStats,
    done: threading.Event,
    pending: Callable[[], int] | None = None,
) -> None:
    """Update the metrics, the target and the achieved rate once a second (and at the end)."""
    publisher = MetricsPublisher(stats, pending)
    while not done.wait(1.0):
        elapsed = (ctx.clock.now_ns() - ctx.start_ns) / 1e9
        rate = target_rate(profile, max(0.0, elapsed), mean_bytes)
        TARGET.set(rate or 0.0)
        ACHIEVED.set(publisher.publish())
    publisher.publish()


def summarise(
    stats: SendStats, start_ns: int, end_ns: int, bounds: LoadBounds
) -> dict[str, object]:
    """producer.json: counts, the per-second sends, and the load phase's schedule lag."""
    return {
        "scheduled": bounds.end,
        "sent": stats.sent,
        "acked": stats.acked,
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "bytes": stats.bytes,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "last_send_ns": stats.last_send_ns,
        "load_first_send_ns": stats.load_first_send_ns or None,
        "per_second": [
            stats.per_second.get(s, 0) for s in range(max(stats.per_second, default=-1) + 1)
        ],
        "load_seq_start": bounds.start,
        "load_seq_end": bounds.end,
        "load_sent": stats.load_sent,
        "load_seq_counted": bounds.counted,
        "lag_p50_s": stats.load_lags.percentile_s(50),
        "lag_p99_s": stats.load_lags.percentile_s(99),
        "lag_max_s": stats.load_lags.max_s(),
    }


def load_phase_rate(bounds: LoadBounds, warmup: float, duration: float) -> float:
    """Messages per second the schedule intends over the load phase (warmup excluded)."""
    return (bounds.end - bounds.start) / (duration - warmup)


def announce_start(run_dir: Path, clock: PacingClock) -> int:
    """Fix the load's start shortly ahead, once frames and schedule are ready, and tell the run.

    Preparing (drawing and encoding frames) takes seconds; a start time fixed
    before that would begin the run with a burst of late messages.
    """
    start_ns = clock.now_ns() + START_LEAD_NS
    tmp = run_dir / f"{START_FILE}.tmp"
    tmp.write_text(json.dumps({"start_ns": start_ns}))
    tmp.replace(run_dir / START_FILE)
    return start_ns


def send_all(
    producer: Producer,
    schedule: Schedule,
    frames: Iterator[bytes],
    ctx: SendContext,
    stats: SendStats,
    stop: threading.Event,
    threads: int,
) -> None:
    """Run `threads` send loops over the shared schedule until it ends or stop is set."""
    lock = threading.Lock()
    loops = [
        threading.Thread(
            target=send_loop, args=(producer, schedule, frames, lock, ctx, stats, stop)
        )
        for _ in range(threads)
    ]
    for loop in loops:
        loop.start()
    for loop in loops:
        loop.join()


def main(registry: CollectorRegistry = REGISTRY) -> None:
    parser = common.base_parser("scalelab load generator")
    args = parser.parse_args()
    spec = load_resolved(args.spec, args.base_dir)
    stop = common.stop_event()
    common.serve_metrics(args.metrics_port)
    source = make_source(spec.source, spec.base_dir)
    profile = make_profile(spec.load, spec.base_dir)
    mean_bytes = source.mean_frame_bytes
    schedule = Schedule(send_times(profile, mean_bytes), spec.load.warmup)
    stats = SendStats()
    registry.register(LagCollector(stats))
    producer = Producer(load_producer_config(args.bootstrap))
    clock = PacingClock()
    start_ns = announce_start(args.run_dir, clock)
    ctx = SendContext(start_ns, spec.broker.input_topic, args.run_id, source.source_id, clock)
    done = threading.Event()
    reporter = threading.Thread(
        target=rate_reporter,
        daemon=True,
        args=(profile, mean_bytes, ctx, stats, done, producer.__len__),
    )
    reporter.start()
    cpu_start = time.process_time()
    send_all(producer, schedule, source.frames(), ctx, stats, stop, spec.load.producers)
    undelivered = flush(producer, stop)
    stats.settle(len(producer))
    cpu_end = time.process_time()
    done.set()
    reporter.join(5)
    bounds = load_bounds(schedule, profile, mean_bytes)
    result = summarise(stats, start_ns, clock.now_ns(), bounds)
    result["cpu_s"] = cpu_end - cpu_start
    result["load_cpu_s"] = cpu_end - stats.load_first_cpu_s if stats.load_first_send_ns else None
    result["target_rate"] = load_phase_rate(bounds, spec.load.warmup, spec.load.duration)
    result["flush_undelivered"] = undelivered
    (args.run_dir / "producer.json").write_text(json.dumps(result, indent=2))
    if undelivered:
        raise UndeliveredError(undelivered, stats.sent)


if __name__ == "__main__":
    try:
        main()
    except UndeliveredError as e:
        print(f"scalelab producer: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
