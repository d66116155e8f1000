"""Pipeline efficiency: frames/s through the whole pipeline over bare ONNX Runtime frames/s.

For each thread count (default 2, then 1), in one command:

1. bare ONNX Runtime on the demo YOLOv8n (``build_model``), same threads and
   batch (``bench/inference_bare.py``'s ``bare_throughput``), ``--bare-seconds``;
2. ``scalelab run examples/quickstart.yaml`` with one worker, one partition,
   that thread count and batch, at a rate far above what one worker can do
   (60 frames/s of 640x480 JPEG), 40 s of load of which 10 s warmup;
   pipeline throughput = frames whose ``done_ns`` (qos.parquet) falls in the
   run's ``load`` phase window / the window's length (the worker has a
   backlog all along: the consumer lag is shown);
3. bare ONNX Runtime again; the reference is the mean of before and after;
4. (unless ``--no-contended``) bare ONNX Runtime once more while a local
   broker takes the same offered load from the producer component (no
   worker): what inference alone gets when the rest of the stack takes its
   share of the cores. Pipeline close to this figure and well under the idle
   bare figure means the gap is the cores the stack uses, not the worker's
   Kafka path or thread oversubscription.

``--repeat`` (default 3) repetitions, the thread counts interleaved; the
summary shows the median [min..max] of each figure and the load average.

Also printed: the worker's per-frame time split (decode, preprocess,
inference, postprocess from qos.parquet, the rest = Kafka and idle), and the
CPU each component used during the load phase (summary.json): the broker,
producer, tracker and Prometheus share the 2 cores with the worker.

Goal: pipeline / bare ≥ 0.9.
Run: ``.venv/bin/python bench/pipeline_efficiency.py [--threads 2 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from _common import (
    ROOT,
    SCALELAB_CLI,
    LocalStack,
    isolated,
    machine,
    make_spec,
    median,
    run_producer,
    spread,
    table,
    verdict,
)
from inference_bare import bare_throughput
from scalelab.models.registry import build_model

GOAL_RATIO = 0.9
STAGES = ("decode", "preprocess", "inference", "postprocess")


@dataclass
class Result:
    threads: int
    batch: int
    bare_before: float
    bare_after: float
    bare_cores: float
    pipeline: float
    frames: int
    window_s: float
    min_lag: int
    stages_ms: dict[str, float]
    kafka_gap_ms: float
    cpu: dict[str, dict[str, float]]
    status: str
    contended: float = float("nan")
    load1: float = float("nan")

    @property
    def bare(self) -> float:
        return (self.bare_before + self.bare_after) / 2

    @property
    def ratio(self) -> float:
        return self.pipeline / self.bare


def demo_model() -> Path:
    path = Path(os.environ["SCALELAB_MODELS"]) / "yolov8n.onnx"
    if not path.exists():
        build_model("yolov8n", path)
    return path


def run_pipeline(args: argparse.Namespace, threads: int) -> tuple[Path, str]:
    runs = Path(os.environ["SCALELAB_RUNS"])
    before = set(runs.iterdir())
    overrides = {
        "workload.workers": 1,
        "broker.partitions": 1,
        "workload.threads": threads,
        "workload.batch_size": args.batch,
        "load.rate": args.rate,
        "load.duration": f"{args.duration:g}s",
        "load.warmup": f"{args.warmup:g}s",
        "workload.drain_timeout": "5s",
    }
    argv = [SCALELAB_CLI, "run", str(args.spec)]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={value}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    new = sorted(set(runs.iterdir()) - before)
    if not new:
        raise RuntimeError(f"scalelab run left no run directory:\n{done.stdout}\n{done.stderr}")
    status = json.loads((new[-1] / "run.json").read_text())["status"]
    return new[-1], status


def measure(run_dir: Path) -> dict[str, Any]:
    record = json.loads((run_dir / "run.json").read_text())
    load = next(p for p in record["phases"] if p["name"] == "load")
    start_ns, end_ns = _ns(load["start"]), _ns(load["end"])
    qos = pq.read_table(run_dir / "qos.parquet").to_pydict()
    done = np.asarray(qos["done_ns"], dtype=np.int64)
    mask = (done >= start_ns) & (done < end_ns)
    window_s = (end_ns - start_ns) / 1e9
    stages = {s: 1000 * float(np.mean(np.asarray(qos[f"{s}_s"])[mask])) for s in STAGES}
    # One worker, one partition: between a frame's done_ns and the next frame's consume_ns
    # the worker emits the result, flushes the producer, commits, and polls the next frame.
    order = np.argsort(np.asarray(qos["offset"]))
    consumed = np.asarray(qos["consume_ns"], dtype=np.int64)[order]
    finished = done[order]
    gaps = (consumed[1:] - finished[:-1]) / 1e6
    in_load = mask[order][:-1] & mask[order][1:]
    summary = json.loads((run_dir / "summary.json").read_text())
    first = json.loads((run_dir / "producer.json").read_text())["start_ns"]
    t0, t1 = (start_ns - first) / 1e9, (end_ns - first) / 1e9
    lags = [s["lag"] for s in summary.get("consumer_lag", []) if t0 <= s["t"] <= t1]
    return {
        "frames": int(mask.sum()),
        "window_s": window_s,
        "pipeline": int(mask.sum()) / window_s,
        "stages_ms": stages,
        "kafka_gap_ms": float(np.mean(gaps[in_load])) if in_load.any() else float("nan"),
        "cpu": summary.get("cpu", {}),
        "min_lag": min(lags) if lags else -1,
    }


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)


def bare(model: Path, threads: int, batch: int, seconds: float) -> tuple[float, float]:
    """Bare img/s, and the cores this process got meanwhile (contention shows here)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    rate = bare_throughput(model, threads, batch, seconds)
    return rate, (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def bare_contended(args: argparse.Namespace, model: Path, threads: int) -> float:
    """Bare img/s while a broker takes the offered load from the producer (no worker)."""
    spec = make_spec(
        "bench-contended",
        broker={"partitions": 1},
        source={"kind": "synthetic", "width": 640, "height": 480},
        load={"profile": "constant", "rate": args.rate, "duration": args.bare_seconds + 15},
    )
    with LocalStack(spec, "contended") as stack:
        from scalelab.run import kafka_ops

        kafka_ops.create_topics(kafka_ops.admin(stack.bootstrap), spec.broker, 1)
        feeder = threading.Thread(target=run_producer, args=(stack, spec, f"feed-{threads}"))
        feeder.start()
        time.sleep(8)  # producer start-up: imports, frames, first sends
        rate, _ = bare(model, threads, args.batch, args.bare_seconds)
        feeder.join()
    return rate


def one(args: argparse.Namespace, model: Path, threads: int) -> Result:
    load1 = os.getloadavg()[0]
    before, cores0 = bare(model, threads, args.batch, args.bare_seconds)
    print(f"  threads {threads}: bare before {before:.1f} img/s ({cores0:.2f} cores)", flush=True)
    started = time.perf_counter()
    run_dir, status = run_pipeline(args, threads)
    print(
        f"  threads {threads}: run {run_dir.name} {status} in {time.perf_counter() - started:.0f} s"
    )
    after, cores1 = bare(model, threads, args.batch, args.bare_seconds)
    print(f"  threads {threads}: bare after {after:.1f} img/s ({cores1:.2f} cores)", flush=True)
    m = measure(run_dir)
    contended = bare_contended(args, model, threads) if args.contended else float("nan")
    if args.contended:
        print(f"  threads {threads}: bare beside the stack {contended:.1f} img/s", flush=True)
    return Result(
        threads,
        args.batch,
        before,
        after,
        (cores0 + cores1) / 2,
        m["pipeline"],
        m["frames"],
        m["window_s"],
        m["min_lag"],
        m["stages_ms"],
        m["kafka_gap_ms"],
        m["cpu"],
        status,
        contended,
        load1,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "examples" / "quickstart.yaml"))
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rate", type=float, default=60.0, help="frames/s offered (saturating)")
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--bare-seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-contended", dest="contended", action="store_false")
    args = parser.parse_args(argv)
    with isolated():
        model = demo_model()
        print(f"{machine()}; model {model}; batch {args.batch}; offered {args.rate:g} frames/s")
        results = []
        for rep in range(args.repeat):
            shift = rep % len(args.threads)
            for threads in args.threads[shift:] + args.threads[:shift]:
                results.append(one(args, model, threads))
    print()
    headers = ["threads", "batch", "bare before", "bare after", "bare mean", "bare cores"]
    headers += ["pipeline"]
    headers += ["frames", "window s", "min lag", "ratio", "bare beside stack", "ratio to it"]
    headers += ["load1", "run"]
    rows = [
        [
            r.threads,
            r.batch,
            r.bare_before,
            r.bare_after,
            r.bare,
            r.bare_cores,
            r.pipeline,
            r.frames,
            r.window_s,
            r.min_lag,
            r.ratio,
            r.contended,
            r.pipeline / r.contended,
            r.load1,
            r.status,
        ]
        for r in results
    ]
    print("Throughput, frames/s (pipeline = frames done in the load phase / its length)")
    print(table(headers, rows))
    print()
    print(
        "Worker time per frame, ms (means over the load phase; kafka = from a frame's done_ns to\n"
        "the next frame's consume_ns: produce result, poll, commit once acknowledged)"
    )
    rows = []
    for r in results:
        wall = 1000 / r.pipeline
        rest = wall - sum(r.stages_ms.values()) - r.kafka_gap_ms
        bare_ms = 1000 / r.bare
        rows.append(
            [r.threads, wall, *(r.stages_ms[s] for s in STAGES), r.kafka_gap_ms, rest, bare_ms]
        )
    print(table(["threads", "per frame", *STAGES, "kafka", "other", "bare inference"], rows))
    print()
    print("CPU during the load phase, cores (summary.json; the machine has 2)")
    names = sorted({name for r in results for name in r.cpu})
    rows = [
        [r.threads, *(r.cpu.get(n, {}).get("cores", float("nan")) for n in names)] for r in results
    ]
    print(table(["threads", *names], rows))
    print()
    print(f"Median [min..max] over {args.repeat} repetition(s)")
    rows = []
    for threads in args.threads:
        mine = [r for r in results if r.threads == threads]
        rows.append(
            [
                threads,
                spread([r.bare for r in mine], "{:.1f}"),
                spread([r.pipeline for r in mine], "{:.1f}"),
                spread([r.ratio for r in mine], "{:.2f}"),
                spread([r.contended for r in mine], "{:.1f}"),
                spread([r.pipeline / r.contended for r in mine], "{:.2f}"),
                spread([r.cpu.get("broker", {}).get("cores", float("nan")) for r in mine]),
                spread([r.load1 for r in mine], "{:.1f}"),
            ]
        )
    headers = ["threads", "bare img/s", "pipeline", "ratio", "bare beside stack", "ratio to it"]
    print(table([*headers, "broker cores", "load1"], rows))
    print()
    ratios = {t: median([r.ratio for r in results if r.threads == t]) for t in args.threads}
    figures = ", ".join(f"{t} thread(s) {ratio:.2f}" for t, ratio in ratios.items())
    print(
        verdict(
            min(ratios.values()) >= GOAL_RATIO,
            f"pipeline / bare ONNX Runtime, medians: {figures} (goal ≥ {GOAL_RATIO})",
        )
    )


if __name__ == "__main__":
    main()
