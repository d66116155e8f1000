"""Flink `frames` job: frames per core at saturation against the YOLO worker's pipeline doing
the same decode-only work, and the rescale pause of the adaptive scheduler against
stop-with-savepoint + resubmit.

Part `capacity`: one stack (broker, Prometheus, a Flink session cluster with one
TaskManager) built from examples/flink-frames.yaml with `work: {decode: true, burn: 0}`,
1 input partition. A backlog of `--backlog` frames (the example's 320x240 JPEG synthetic
frames) is produced before anything reads, so neither side competes with a producer.
Then, each round, in rotating order and each with its own consumer group (from offset 0)
and output topic: (a) the `frames` job at parallelism 1, submitted over REST; (b) the
YOLO worker's pipeline (`scalelab.components.worker.Worker`: consumer → decode → output
record → producer → commit once acknowledged), one process, batch 1, with the model step
replaced by decode only (`bench/_decode_worker.py`; the product has no decode-only mode).
Each side gets `--warm` s after its first output, then a `--seconds` s window: frames
completed = growth of its output topic's end offset, CPU = user + system seconds of the
TaskManager JVM (every thread: source fetcher, task, sink producer, checkpoints, GC, JIT)
or of the worker process (Python + librdkafka's threads), from psutil. Reported: frames
per CPU-second and per wall second, Flink ÷ Python per CPU-second within each round,
median [min..max], the machine's load and other processes' cores in each window.

Part `rescale`: two short `kind: flink` runs of the same example (decode only, rescale
1 → 2 halfway at `--rate` frames/s), one per rescale mode, the whole `scalelab run`
path: the rescale's pause (longest gap between two outputs overlapping it), its
effective time, duplicates and losses.

    .venv/bin/python bench/flink_frames.py [--parts capacity rescale] [--rounds 3]
        [--seconds 20] [--warm 5] [--backlog 80000] [--rate 20] [--rescale-seconds 40]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from rich.console import Console

from _common import (
    ROOT,
    LoadMeter,
    LocalStack,
    cpu_seconds,
    isolated,
    machine,
    new_topic,
    run_producer,
    spread,
    table,
    verdict,
)
from scalelab.platform.local.flink_job import FlinkJob, JobContext
from scalelab.platform.local.flink_rest import FlinkRest
from scalelab.run import kafka_ops
from scalelab.run.experiment import Experiment
from scalelab.run.runner import analyse, export_metrics
from scalelab.run.session import Interrupts, RunSession
from scalelab.spec.loader import load_spec
from scalelab.spec.models import FlinkWorkload

EXAMPLE = ROOT / "examples" / "flink-frames.yaml"
DECODE_WORKER = Path(__file__).resolve().parent / "_decode_worker.py"
FIRST_OUTPUT_TIMEOUT = 180.0
DEAD_LETTER = "bench.dead-letter"


# -- rescale pauses: whole runs ---------------------------------------------------------------
def flink_run(mode: str, rate: float, seconds: float) -> dict[str, object]:
    overrides = [
        f"workload.rescale={mode}",
        "workload.work.burn=0",
        "workload.rescale_cooldown=1s",
        f"workload.schedule=[{{at: {seconds / 2:g}s, parallelism: 2}}]",
        f"load.rate={rate:g}",
        f"load.duration={seconds:g}s",
        "load.warmup=5s",
    ]
    spec = load_spec(EXAMPLE, overrides)
    with Interrupts() as interrupts:
        session = RunSession(spec, EXAMPLE, interrupts=interrupts)
        try:
            with session:
                endpoints = session.start_stack()
                try:
                    Experiment(session, endpoints, "", Console(stderr=True)).execute()
                finally:
                    export_metrics(session, Console(stderr=True))
        except (KeyboardInterrupt, Exception) as error:  # noqa: BLE001 - reported below
            print(f"{mode}: run failed: {error}", flush=True)
        analyse(session)
    summary = json.loads((session.dir / "summary.json").read_text())
    accounting = summary["accounting"]
    (change,) = summary["flink"]["rescales"]
    effective = (change["effective_ns"] - change["requested_ns"]) / 1e9
    return {
        "mode": mode,
        "processed": accounting["processed"],
        "pause_s": change["pause_s"],
        "effective_s": effective,
        "duplicates": accounting["duplicates"],
        "lost": accounting["lost"],
    }


def rescale_part(args: argparse.Namespace) -> bool:
    rows = [flink_run(mode, args.rate, args.rescale_seconds) for mode in ("adaptive", "savepoint")]
    print(f"\nRescale 1 -> 2 at {args.rate:g} frames/s, decode only, one run per mode")
    headers = ["mode", "processed", "pause s", "effective s", "dups", "lost"]
    print(table(headers, [list(row.values()) for row in rows]))
    adaptive, savepoint = rows
    ok = all(row["lost"] == 0 for row in rows)
    print(
        verdict(
            ok,
            f"no loss in either rescale; pause adaptive {adaptive['pause_s']:.2f} s vs "
            f"savepoint {savepoint['pause_s']:.2f} s",
        )
    )
    return ok


# -- capacity: the same backlog, Flink's TaskManager against the worker's pipeline ------------
@dataclass
class Window:
    side: str
    round: int
    frames: int  # completed in the window (output end offset growth)
    cpu_s: float  # the side's process CPU in the window
    wall_s: float
    load1: float
    broker: float  # cores the broker used in the window
    others: float  # cores used by processes other than the side, the broker and this bench
    left: int  # backlog frames not yet output at the window's end (must stay > 0)
    decode_ms: float = float("nan")  # mean decode_s of the window's output records, in ms

    @property
    def per_cpu_s(self) -> float:
        return self.frames / self.cpu_s if self.cpu_s else float("nan")

    @property
    def per_wall_s(self) -> float:
        return self.frames / self.wall_s

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s


class Capacity:
    def __init__(self, stack: LocalStack, backlog: int, warm: float, seconds: float):
        self.stack = stack
        self.spec = stack.spec
        self.input = self.spec.broker.input_topic
        self.warm, self.seconds = warm, seconds
        self.admin = kafka_ops.admin(stack.bootstrap)
        self.offsets = kafka_ops.OffsetReader(stack.bootstrap, "bench-offsets")
        self.broker_pid = stack.platform.component_pids().get("broker")
        new_topic(stack.bootstrap, self.input)
        new_topic(stack.bootstrap, DEAD_LETTER)
        self.backlog = self._produce(backlog)

    def _end(self, topic: str) -> int:
        return sum(self.offsets.end_offsets(topic).values())

    def _produce(self, count: int) -> int:
        rate = 4000.0
        load = [f"load.rate={rate:g}", f"load.duration={count / rate:g}s", "load.warmup=0s"]
        spec = load_spec(EXAMPLE, capacity_spec_overrides() + load)
        started = time.perf_counter()
        run_producer(self.stack, spec, "backlog", timeout=600)
        produced = self._end(self.input)
        print(f"backlog: {produced:,} frames in {time.perf_counter() - started:.1f} s", flush=True)
        return produced

    def _start_at_zero(self, group: str, output: str) -> None:
        new_topic(self.stack.bootstrap, output)
        kafka_ops.commit_offsets(self.admin, group, self.input, {0: 0})

    def measure(self, side: str, round_: int, pid: int, output: str) -> Window:
        deadline = time.monotonic() + FIRST_OUTPUT_TIMEOUT
        while self._end(output) == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{side}: no output after {FIRST_OUTPUT_TIMEOUT:g} s")
            self.stack.platform.check_health()
            time.sleep(0.2)
        time.sleep(self.warm)
        cpu0, out0 = cpu_seconds(pid), self._end(output)
        with LoadMeter(self.broker_pid) as meter:
            time.sleep(self.seconds)
            cpu1, out1 = cpu_seconds(pid), self._end(output)
        w = meter.window
        assert w is not None
        cpu = cpu1 - cpu0
        window = Window(
            side,
            round_,
            out1 - out0,
            cpu,
            w.wall_s,
            w.load1,
            w.broker_s / w.wall_s,
            w.others_cores(cpu),
            self.backlog - out1,
        )
        window.decode_ms = mean_decode_ms(self.stack.bootstrap, output, out0, out1)
        return window

    def flink(self, round_: int) -> Window:
        group, output = f"bench-flink-{round_}", f"bench.out.flink-{round_}"
        self._start_at_zero(group, output)
        workload = self.spec.workload
        assert isinstance(workload, FlinkWorkload)
        url = self.stack.platform.flink_url
        assert url is not None
        ctx = JobContext(
            self.stack.bootstrap, self.input, output, DEAD_LETTER, group, self.stack.run_id
        )
        job = FlinkJob(FlinkRest(url), workload, ctx)
        try:
            job.submit(check=self.stack.platform.check_health)
            pid = self.stack.platform.component_pids()["taskmanager-0"]
            return self.measure("flink", round_, pid, output)
        finally:
            job.cancel()
            job.rest.close()
            time.sleep(2)  # the slot is free again before the other side runs

    def python(self, round_: int) -> Window:
        group, output = f"bench-python-{round_}", f"bench.out.python-{round_}"
        self._start_at_zero(group, output)
        log = (self.stack.dir / f"decode-worker-{round_}.log").open("w")
        command = [
            *(sys.executable, str(DECODE_WORKER), "--bootstrap", self.stack.bootstrap),
            *("--input", self.input, "--group", group, "--output", output),
            *("--dead-letter", DEAD_LETTER, "--run-id", f"{self.stack.run_id}-python-{round_}"),
        ]
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            return self.measure("python", round_, proc.pid, output)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()

    def close(self) -> None:
        self.offsets.close()
        self.admin.close()


def mean_decode_ms(bootstrap: str, topic: str, start: int, end: int, most: int = 2000) -> float:
    """Mean `decode_s` (ms) of up to `most` output records from offset `start` (partition 0)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-decode", "log_level": 3}
    )
    values: list[float] = []
    wanted = min(most, end - start)
    try:
        consumer.assign([TopicPartition(topic, 0, start)])
        deadline = time.monotonic() + 30
        while len(values) < wanted and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    values.append(float(json.loads(message.value() or b"{}")["decode_s"]))
    finally:
        consumer.close()
    return 1000 * sum(values) / len(values) if values else float("nan")


def capacity_spec_overrides() -> list[str]:
    return [
        "workload.work.burn=0",
        "workload.parallelism=1",
        "workload.taskmanagers=1",
        "workload.schedule=[]",
        "broker.partitions=1",
    ]


def capacity_part(args: argparse.Namespace) -> bool:
    spec = load_spec(EXAMPLE, capacity_spec_overrides())
    windows: list[Window] = []
    with LocalStack(spec, "flink-capacity") as stack:
        bench = Capacity(stack, args.backlog, args.warm, args.seconds)
        try:
            for round_ in range(args.rounds):
                order = ("flink", "python") if round_ % 2 == 0 else ("python", "flink")
                for side in order:
                    window = bench.flink(round_) if side == "flink" else bench.python(round_)
                    windows.append(window)
                    print(
                        f"round {round_ + 1} {side}: {window.frames:,} frames in "
                        f"{window.wall_s:.1f} s, {window.cpu_s:.1f} CPU-s "
                        f"({window.per_cpu_s:.0f}/CPU-s), backlog left {window.left:,}",
                        flush=True,
                    )
        finally:
            bench.close()
    return report_capacity(windows, args)


def report_capacity(windows: list[Window], args: argparse.Namespace) -> bool:
    print(
        f"\nSaturation from a backlog, decode only (320x240 JPEG), 1 partition, "
        f"{args.warm:g} s warm then a {args.seconds:g} s window per side"
    )
    headers = [
        "round",
        "side",
        "frames",
        "wall s",
        "CPU-s",
        "cores",
        "frames/CPU-s",
        "frames/s",
        "decode ms",
        "load1",
        "broker cores",
        "others cores",
        "backlog left",
    ]
    rows = [
        [
            w.round + 1,
            w.side,
            w.frames,
            w.wall_s,
            w.cpu_s,
            w.cores,
            w.per_cpu_s,
            w.per_wall_s,
            w.decode_ms,
            w.load1,
            w.broker,
            w.others,
            w.left,
        ]
        for w in windows
    ]
    print(table(headers, rows))
    by = {(w.side, w.round): w for w in windows}
    rounds = sorted({w.round for w in windows})
    cpu_ratio = [by["flink", r].per_cpu_s / by["python", r].per_cpu_s for r in rounds]
    wall_ratio = [by["flink", r].per_wall_s / by["python", r].per_wall_s for r in rounds]
    print(f"\nMedian [min..max] over {len(rounds)} round(s)")
    summary = [
        [
            side,
            spread([by[side, r].per_cpu_s for r in rounds], "{:.0f}"),
            spread([by[side, r].per_wall_s for r in rounds], "{:.0f}"),
            spread([by[side, r].cores for r in rounds], "{:.2f}"),
            spread([by[side, r].decode_ms for r in rounds], "{:.3f}"),
            spread([by[side, r].broker for r in rounds], "{:.2f}"),
        ]
        for side in ("flink", "python")
    ]
    headers = ["side", "frames/CPU-s", "frames/s", "cores", "decode ms", "broker cores"]
    print(table(headers, summary))
    print(
        f"Flink ÷ Python per CPU-second: {spread(cpu_ratio, '{:.2f}')}; "
        f"per wall second: {spread(wall_ratio, '{:.2f}')}"
    )
    dry = [f"{w.side} round {w.round + 1}" for w in windows if w.left <= 0]
    ok = not dry and all(w.frames > 0 for w in windows)
    text = (
        f"both sides saturated for the whole window in {len(rounds)} round(s)"
        if ok
        else f"backlog ran out ({', '.join(dry)}): raise --backlog"
    )
    print(verdict(ok, text))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", choices=("capacity", "rescale"), default=["capacity", "rescale"]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20, help="measured window per side")
    parser.add_argument("--warm", type=float, default=5, help="after the first output")
    parser.add_argument("--backlog", type=int, default=80000, help="frames produced first")
    parser.add_argument("--rate", type=float, default=20, help="rescale part: frames/s")
    parser.add_argument("--rescale-seconds", type=float, default=40, help="rescale part: load")
    args = parser.parse_args()
    print(machine(), flush=True)
    started = time.perf_counter()
    ok = True
    with isolated():
        if "capacity" in args.parts:
            ok = capacity_part(args) and ok
        if "rescale" in args.parts:
            ok = rescale_part(args) and ok
    print(f"{machine()}; {time.perf_counter() - started:.0f} s in all", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
