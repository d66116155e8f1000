"""Chaos faults on real processes: a network delay through the proxy raises latency in its
window and not outside it; a worker paused past its session timeout is survived while the
autoscaler runs (nothing lost)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
from autoscale_kit import (
    Feeder,
    broker_behind_proxy,
    create_topics,
    output_keys,
    output_records,
    worker_launcher,
)
from confluent_kafka.admin import AdminClient

from scalelab.autoscale.actuator import LocalWorkers
from scalelab.autoscale.decisions import read_decisions
from scalelab.autoscale.service import Autoscaler, Sources
from scalelab.chaos.injectors import Target
from scalelab.chaos.local import local_target
from scalelab.chaos.schedule import ChaosSchedule
from scalelab.chaos.spec import ChaosFault
from scalelab.platform.local.platform import LocalPlatform
from scalelab.platform.process import wait_until
from scalelab.run import kafka_ops

pytestmark = pytest.mark.integration

PARTITIONS = 2


def answers(bootstrap: str) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=2).brokers)
    except Exception:  # noqa: BLE001 - not ready yet
        return False


def group_holds(bootstrap: str, group: str, members: int) -> bool:
    with kafka_ops.admin(bootstrap) as admin:
        return kafka_ops.group_members(admin, group) == (members, PARTITIONS)


def run_schedule(chaos: ChaosSchedule, seconds: float, tick: object = None) -> None:
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        chaos.tick(elapsed)
        if callable(tick):
            tick()
        time.sleep(0.1)


def test_a_network_delay_raises_latency_inside_its_window_only(
    local_stack: LocalPlatform, tmp_path: Path
) -> None:
    broker, proxy, bootstrap = broker_behind_proxy(tmp_path / "broker", "delaytest")
    workers: LocalWorkers | None = None
    try:
        assert wait_until(lambda: answers(bootstrap), 120), broker.log_tail()
        topics = create_topics(bootstrap, PARTITIONS)
        launcher = worker_launcher(bootstrap, topics, tmp_path)
        workers = LocalWorkers(local_stack, launcher, [], prefix=f"{launcher.run_id}-worker")
        workers.scale_to(1)
        assert wait_until(lambda: group_holds(bootstrap, launcher.group, 1), 90)
        fault = ChaosFault(kind="network-delay", at=10, duration=10, delay_ms=300)
        events: list[tuple[str, str]] = []
        chaos = ChaosSchedule([fault], Target(proxy=proxy), lambda k, d: events.append((k, d)))
        feeder = Feeder(bootstrap, topics.input, launcher.run_id, rate=10)
        feeder.start()
        run_schedule(chaos, 32)
        feeder.stop()
        chaos.close()
        assert feeder.unflushed == 0
        assert wait_until(
            lambda: len(set(output_keys(bootstrap, topics.output))) >= feeder.sent, 90
        )
        records = output_records(bootstrap, topics.output)
    finally:
        if workers is not None:
            workers.stop_all()
        proxy.close()
        broker.stop()

    window = chaos.windows[0]
    assert (
        window.start_ns and window.end_ns and [k for k, _ in events] == ["chaos-network-delay"] * 2
    )
    start, end = window.start_ns, window.end_ns

    def latencies(lo: float, hi: float) -> list[float]:
        return [
            (int(r["done_ns"]) - int(r["intended_ns"])) / 1e9  # type: ignore[call-overload]
            for r in records
            if lo <= int(r["intended_ns"]) < hi  # type: ignore[call-overload]
        ]

    before = latencies(start - 8e9, start - 1e9)
    inside = latencies(start + 1e9, end - 1e9)
    after = latencies(end + 4e9, end + 11e9)
    assert before and inside and after
    base = statistics.median(before)
    assert statistics.median(inside) >= base + 0.3, (base, statistics.median(inside))
    assert statistics.median(after) < base + 0.2, (base, statistics.median(after))


def test_a_paused_worker_is_survived_while_the_autoscaler_runs(
    local_stack: LocalPlatform, tmp_path: Path
) -> None:
    endpoints = local_stack.endpoints
    assert endpoints is not None
    bootstrap = endpoints.bootstrap
    topics = create_topics(bootstrap, PARTITIONS)
    launcher = worker_launcher(bootstrap, topics, tmp_path)
    prefix = f"{launcher.run_id}-worker"
    workers = LocalWorkers(local_stack, launcher, [], prefix=prefix)
    from scalelab.spec.autoscale import AutoscalerSpec

    spec = AutoscalerSpec(policy="threshold", lag_high=60, min=2, max=3, interval=2, cooldown=5)
    sources = Sources(
        endpoints.prometheus_url,
        local_stack.run_id,
        bootstrap,
        launcher.group,
        topics.input,
        PARTITIONS,
        components=f"{prefix}-.*",
    )
    events: list[tuple[str, str]] = []
    feeder = Feeder(bootstrap, topics.input, launcher.run_id, rate=8)
    try:
        workers.scale_to(2)
        assert wait_until(lambda: group_holds(bootstrap, launcher.group, 2), 90)
        record = lambda k, d: events.append((k, d))  # noqa: E731
        scaler = Autoscaler(spec, sources, workers, record, tmp_path)
        target = local_target(local_stack, lambda: workers.live, topics.output, bootstrap)
        pause = ChaosFault(kind="pause-worker", at=5, duration=16, worker=0)
        chaos = ChaosSchedule([pause], target, record)
        feeder.start()
        run_schedule(chaos, 35, scaler.tick)
        feeder.stop()
        chaos.close()
        assert feeder.unflushed == 0
        wanted = feeder.keys()
        assert wait_until(
            lambda: wanted <= set(output_keys(bootstrap, topics.output)), 150, interval=3
        )
        local_stack.check_health()  # no worker died of the pause
        scaler.close()
    finally:
        if feeder.is_alive():
            feeder.stop()
        workers.stop_all()
    kinds = [k for k, _ in events]
    assert kinds.count("chaos-pause-worker") == 2
    assert "SIGSTOP" in events[kinds.index("chaos-pause-worker")][1]
    assert read_decisions(tmp_path / "decisions.parquet")


def test_a_restarted_broker_is_survived(local_stack: LocalPlatform, tmp_path: Path) -> None:
    """The broker stops for 8 s under load and starts again on the same data: the worker
    keeps running and every frame sent before, during (buffered by the producer) and
    after the restart is processed."""
    broker, proxy, bootstrap = broker_behind_proxy(tmp_path / "broker", "restarttest")
    workers: LocalWorkers | None = None
    try:
        assert wait_until(lambda: answers(bootstrap), 120), broker.log_tail()
        topics = create_topics(bootstrap, PARTITIONS)
        launcher = worker_launcher(bootstrap, topics, tmp_path)
        workers = LocalWorkers(local_stack, launcher, [], prefix=f"{launcher.run_id}-worker")
        workers.scale_to(1)
        assert wait_until(lambda: group_holds(bootstrap, launcher.group, 1), 90)
        target = Target(stop_broker=lambda: broker.stop(30), start_broker=broker.start)
        events: list[tuple[str, str]] = []
        fault = ChaosFault(kind="restart-broker", at=6, duration=8)
        chaos = ChaosSchedule([fault], target, lambda k, d: events.append((k, d)))
        feeder = Feeder(bootstrap, topics.input, launcher.run_id, rate=5)
        feeder.start()
        run_schedule(chaos, 26)
        feeder.stop()
        chaos.close()
        assert feeder.unflushed == 0
        wanted = feeder.keys()
        assert wait_until(
            lambda: wanted <= set(output_keys(bootstrap, topics.output)), 180, interval=3
        )
        local_stack.check_health()  # the worker did not die while the broker was away
    finally:
        if workers is not None:
            workers.stop_all()
        proxy.close()
        broker.stop()
    assert [d.split(":")[0] for _, d in events] == ["begin", "end"]
    assert chaos.windows[0].end_ns and chaos.windows[0].start_ns
