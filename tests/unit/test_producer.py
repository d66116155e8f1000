"""The producer's pacing, lag accounting and schedule, driven by a clock the test controls."""

from __future__ import annotations

import itertools
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from scalelab.components import common
from scalelab.components.lag_histogram import LagHistogram
from scalelab.components.pacing import PacingClock
from scalelab.components.producer import (
    LagCollector,
    Schedule,
    SendContext,
    SendStats,
    load_bounds,
    load_phase_rate,
    send_loop,
    summarise,
)
from scalelab.load.config import LoadSpec
from scalelab.load.profiles import make_profile, send_times

WALL_AT_START = 1_780_000_000_000_000_000  # 2026, UTC epoch ns
HOUR_NS = 3600 * 10**9


def load(**fields: Any) -> Any:
    return TypeAdapter(LoadSpec).validate_python(fields)


class SteppingClock:
    """Monotonic time moves only when slept; the wall clock jumps by `step_ns` at `step_at_s`."""

    def __init__(self, step_at_s: float, step_ns: int):
        self.mono = 5 * 10**9
        self.step_at = self.mono + int(step_at_s * 1e9)
        self.step_ns = step_ns

    def monotonic_ns(self) -> int:
        return self.mono

    def wall_ns(self) -> int:
        stepped = self.step_ns if self.mono >= self.step_at else 0
        return WALL_AT_START - 5 * 10**9 + self.mono + stepped

    def sleep(self, seconds: float) -> None:
        self.mono += round(seconds * 1e9)


class RecordingProducer:
    """Keeps what was produced, and the monotonic time of each produce call."""

    def __init__(self, clock: SteppingClock):
        self.clock = clock
        self.sent: list[tuple[bytes, dict[str, str], int]] = []

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any, on_delivery: Any) -> None:
        self.sent.append((key, common.header_dict(headers), self.clock.mono))

    def poll(self, timeout: float) -> int:
        return 0


def run_loop(
    fake: SteppingClock, schedule: Schedule, frames: Iterator[bytes] | None = None
) -> tuple[RecordingProducer, SendStats, int]:
    clock = PacingClock(fake)
    start_ns = clock.now_ns()
    producer = RecordingProducer(fake)
    stats = SendStats()
    ctx = SendContext(start_ns, "in", "run-7", "synthetic", clock)
    send_loop(
        cast(Any, producer),
        schedule,
        frames or itertools.repeat(b"frame"),
        threading.Lock(),
        ctx,
        stats,
        threading.Event(),
    )
    return producer, stats, start_ns


@pytest.mark.parametrize("step_ns", [-HOUR_NS, HOUR_NS], ids=["clock-back", "clock-forward"])
def test_a_wall_clock_step_changes_neither_pacing_nor_lag(step_ns: int) -> None:
    fake = SteppingClock(step_at_s=0.55, step_ns=step_ns)
    start_mono = fake.mono
    profile = make_profile(load(profile="constant", rate=10, duration=2))
    producer, stats, start_ns = run_loop(fake, Schedule(send_times(profile)))
    assert start_ns == WALL_AT_START
    assert len(producer.sent) == 20
    for seq, (key, headers, mono) in enumerate(producer.sent):
        assert mono == start_mono + seq * 100_000_000  # sent when due: no stall, no burst
        assert int(headers["intended_ns"]) == WALL_AT_START + seq * 100_000_000
        assert headers["sent_ns"] == headers["intended_ns"]
        assert key == f"run-7:{seq}".encode() and headers["seq"] == str(seq)
    assert stats.load_lags.max_ns == 0


def test_lag_percentiles_cover_the_load_phase_only() -> None:
    """A slow start makes warmup messages late; the load phase's percentiles do not show it."""
    fake = SteppingClock(step_at_s=1e9, step_ns=0)

    def slow_start() -> Iterator[bytes]:
        for _ in range(3):  # each of the first three frames takes 0.5 s to prepare
            fake.sleep(0.5)
            yield b"frame"
        yield from itertools.repeat(b"frame")

    profile = make_profile(load(profile="constant", rate=10, duration=4, warmup=2))
    schedule = Schedule(send_times(profile), profile.warmup)
    producer, stats, start_ns = run_loop(fake, schedule, slow_start())
    lags = [int(h["sent_ns"]) - int(h["intended_ns"]) for _, h, _ in producer.sent]
    assert max(lags) >= 1_000_000_000 and lags[20:] == [0] * 20
    report = summarise(stats, start_ns, start_ns, load_bounds(schedule, profile, None))
    assert (report["lag_p50_s"], report["lag_p99_s"], report["lag_max_s"]) == (0.0, 0.0, 0.0)
    assert report["load_seq_start"] == 20
    assert report["load_seq_end"] == report["scheduled"] == 40
    assert report["load_sent"] == 20 and report["load_seq_counted"] is True


def test_lag_histogram_percentiles_are_within_its_resolution() -> None:
    rng = np.random.default_rng(3)
    lags = np.concatenate([rng.integers(0, 200, 1000), rng.lognormal(14, 2, 100_000)]).astype(int)
    histogram = LagHistogram()
    for lag in lags.tolist():
        histogram.add(lag)
    for q in (50, 90, 99, 99.9):
        exact = float(np.percentile(lags, q, method="inverted_cdf")) / 1e9
        assert histogram.percentile_s(q) == pytest.approx(exact, rel=1 / 128, abs=1e-9)
    assert histogram.max_s() == lags.max() / 1e9
    assert LagHistogram().percentile_s(50) is None


def test_send_statistics_do_not_grow_with_the_number_of_sends() -> None:
    stats = SendStats()

    def record(count: int) -> None:
        for n in range(count):
            stats.record_send(0, 10_000 + n, n, True)

    record(10_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    record(200_000)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 100_000, f"{grown} bytes for 200,000 sends"
    assert stats.load_lags.total == 210_000


def test_lag_histogram_is_served_to_prometheus_with_its_buckets() -> None:
    stats = SendStats()
    for lag_ms in (0.1, 0.3, 3, 3, 700):
        stats.record_send(0, int(lag_ms * 1e6), 0, lag_ms > 1)
    registry = CollectorRegistry()
    registry.register(LagCollector(stats))
    name = "scalelab_producer_schedule_lag_hist_seconds"

    def bucket(le: str) -> float | None:
        return registry.get_sample_value(f"{name}_bucket", {"le": le})

    assert [bucket("0.0005"), bucket("0.005"), bucket("0.5"), bucket("+Inf")] == [2, 4, 4, 5]
    assert registry.get_sample_value(f"{name}_sum") == pytest.approx(0.7064)


def test_a_huge_schedule_starts_at_once_in_bounded_memory() -> None:
    """10^6 msg/s for 7 days (the spec's bounds): 6 x 10^11 messages, never held in memory."""
    profile = make_profile(load(profile="constant", rate=1_000_000, duration="7d", warmup="1d"))
    tracemalloc.start()
    schedule = Schedule(send_times(profile), profile.warmup)
    first = [schedule.next() for _ in range(10_000)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000, f"peak {peak} bytes"
    assert first[0] == (0, 0.0) and first[-1] == (9_999, pytest.approx(9_999e-6))
    bounds = load_bounds(schedule, profile, None)
    assert (bounds.start, bounds.end, bounds.counted) == (
        86_400 * 10**6,
        7 * 86_400 * 10**6,
        False,
    )
    assert load_phase_rate(bounds, profile.warmup, profile.duration) == pytest.approx(1e6)


def test_a_schedule_stopped_early_takes_the_load_range_from_the_profile() -> None:
    profile = make_profile(
        load(
            profile="step",
            steps=[{"rate": 5, "duration": 2}, {"rate": 20, "duration": 4}],
            duration=6,
            warmup=3,
        )
    )
    full = Schedule(send_times(profile), profile.warmup)
    while full.next() is not None:
        pass
    partial = Schedule(send_times(profile), profile.warmup)
    for _ in range(7):
        partial.next()
    counted, estimated = load_bounds(full, profile, None), load_bounds(partial, profile, None)
    assert (counted.start, counted.end) == (estimated.start, estimated.end) == (30, 90)
    assert counted.counted and not estimated.counted


def test_a_stop_while_waiting_never_sends_the_next_message_early() -> None:
    """Stopped 3 s into a 100 s pause: the message due after the pause is not sent."""
    fake = SteppingClock(step_at_s=1e9, step_ns=0)
    stop = threading.Event()

    def sleep_then_stop(seconds: float) -> None:
        SteppingClock.sleep(fake, seconds)
        if fake.mono - 5 * 10**9 >= 3 * 10**9:
            stop.set()

    fake.sleep = sleep_then_stop  # type: ignore[method-assign]
    clock = PacingClock(fake)
    producer, stats = RecordingProducer(fake), SendStats()
    ctx = SendContext(clock.now_ns(), "in", "run-7", "synthetic", clock)
    schedule = Schedule(iter([0.0, 100.0]))
    send_loop(
        cast(Any, producer),
        schedule,
        itertools.repeat(b"frame"),
        threading.Lock(),
        ctx,
        stats,
        stop,
    )
    assert [key for key, _, _ in producer.sent] == [b"run-7:0"]


def test_a_paced_producer_hands_every_send_to_the_statistics_before_it_waits() -> None:
    """Sends are tallied in batches, but never held across a wait: metrics stay current."""
    fake = SteppingClock(step_at_s=1e9, step_ns=0)
    seen_at_sleep: list[tuple[int, int]] = []
    stats = SendStats()
    producer = RecordingProducer(fake)

    def sleep_and_look(seconds: float) -> None:
        seen_at_sleep.append((len(producer.sent), stats.sent))
        SteppingClock.sleep(fake, seconds)

    fake.sleep = sleep_and_look  # type: ignore[method-assign]
    clock = PacingClock(fake)
    ctx = SendContext(clock.now_ns(), "in", "run-7", "synthetic", clock)
    # bursts of 100 messages due at once, a second apart: more than one tally batch each
    offsets = [float(second) for second in range(3) for _ in range(100)]
    send_loop(
        cast(Any, producer),
        Schedule(iter(offsets)),
        itertools.repeat(b"frame"),
        threading.Lock(),
        ctx,
        stats,
        threading.Event(),
    )
    assert seen_at_sleep and all(produced == tallied for produced, tallied in seen_at_sleep)
    assert {produced for produced, _ in seen_at_sleep} == {100, 200}
    assert stats.sent == stats.load_sent == 300 and stats.per_second == {0: 100, 1: 100, 2: 100}
    assert stats.sent_bytes == 300 * len(b"frame")


def test_a_full_local_queue_delays_a_message_sends_it_once_and_stamps_when_it_was_taken() -> None:
    fake = SteppingClock(step_at_s=1e9, step_ns=0)

    class FullOnce(RecordingProducer):
        """Refuses the third message once; a poll lets `timeout` seconds pass."""

        def __init__(self, clock: SteppingClock):
            super().__init__(clock)
            self.refused = 0

        def produce(self, *args: Any, **kwargs: Any) -> None:
            if len(self.sent) == 2 and not self.refused:
                self.refused += 1
                raise BufferError("Local: Queue full")
            super().produce(*args, **kwargs)

        def poll(self, timeout: float) -> int:
            self.clock.mono += round(timeout * 1e9)
            return 0

    clock = PacingClock(fake)
    producer, stats = FullOnce(fake), SendStats()
    ctx = SendContext(clock.now_ns(), "in", "run-7", "synthetic", clock)
    send_loop(
        cast(Any, producer),
        Schedule(iter([0.0] * 5)),
        itertools.repeat(b"frame"),
        threading.Lock(),
        ctx,
        stats,
        threading.Event(),
    )
    assert [key for key, _, _ in producer.sent] == [f"run-7:{n}".encode() for n in range(5)]
    assert producer.refused == 1 and stats.sent == 5
    late = [int(h["sent_ns"]) - int(h["intended_ns"]) for _, h, _ in producer.sent]
    start_mono = producer.sent[0][2]  # the first went out when due
    assert late[:2] == [0, 0] and late[2] > 0
    # every sent_ns header is the moment the client took the message, the retried one too
    assert late == [mono - start_mono for _, _, mono in producer.sent]
    assert stats.load_lags.max_ns == max(late)


def test_acknowledged_is_sent_less_errors_less_pending_when_only_errors_are_reported() -> None:
    stats = SendStats()
    stats.record_sends([0, 1_000, 10, 100] * 10, in_load=True)  # 10 sends of 100 B

    class Failed:
        def value(self) -> bytes:
            return b"x" * 100

    stats.on_delivery(cast(Any, "broker said no"), cast(Any, Failed()))
    stats.settle(pending=4)
    assert (stats.sent, stats.errors, stats.acked, stats.bytes) == (10, 1, 5, 500)
    stats.settle(pending=0)
    assert (stats.acked, stats.bytes) == (9, 900)
    assert stats.error_samples == ["broker said no"]
