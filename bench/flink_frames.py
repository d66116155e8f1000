"""Flink `frames` job: throughput per core against the Python decode path, and the rescale
pause of the adaptive scheduler against stop-with-savepoint + resubmit.

Two short `kind: flink` runs of examples/flink-frames.yaml (decode only, no burn, a
rescale 1 → 2 halfway), one per rescale mode, each the whole stack (broker, Prometheus,
Flink, producer, tracker). Figures per run: frames processed per TaskManager CPU-second
(Kafka I/O and Flink's framework included), the rescale's pause (longest gap between two
outputs overlapping it), its effective time, duplicates and losses. The reference is the
YOLO worker's decode step on the same synthetic frames in this process (`decode_frame`
plus the output record's JSON, no Kafka I/O: it favours Python).

    .venv/bin/python bench/flink_frames.py [--rate 20] [--seconds 40]
"""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console

from _common import ROOT, isolated, machine, table, verdict
from scalelab.load.codec import decode_frame
from scalelab.load.sources import make_source
from scalelab.run.experiment import Experiment
from scalelab.run.runner import analyse, export_metrics
from scalelab.run.session import Interrupts, RunSession
from scalelab.spec.loader import load_spec

EXAMPLE = ROOT / "examples" / "flink-frames.yaml"


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
    tm_cpu = sum(v["cpu_seconds"] for k, v in summary["cpu"].items() if k.startswith("taskmanager"))
    (change,) = summary["flink"]["rescales"]
    effective = (change["effective_ns"] - change["requested_ns"]) / 1e9
    return {
        "mode": mode,
        "processed": accounting["processed"],
        "per_tm_cpu_s": accounting["processed"] / tm_cpu if tm_cpu else float("nan"),
        "pause_s": change["pause_s"],
        "effective_s": effective,
        "duplicates": accounting["duplicates"],
        "lost": accounting["lost"],
    }


def python_decode_rate(count: int = 300) -> float:
    """Frames per CPU-second of the worker's decode step (+ the record's JSON), same frames."""
    spec = load_spec(EXAMPLE)
    frames = make_source(spec.source, spec.base_dir).frames()
    batch = [next(frames) for _ in range(count)]
    start = time.process_time()
    for index, frame in enumerate(batch):
        image = decode_frame(frame)
        json.dumps({"id": f"x:{index}", "shape": list(image.shape), "decode_s": 0.001})
    return count / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    print(machine(), flush=True)
    with isolated():
        rows = [flink_run(mode, args.rate, args.seconds) for mode in ("adaptive", "savepoint")]
    python = python_decode_rate()
    headers = ["mode", "processed", "frames/TM CPU-s", "pause s", "effective s", "dups", "lost"]
    print(table(headers, [list(row.values()) for row in rows]))
    flink = max(float(row["per_tm_cpu_s"]) for row in rows)  # type: ignore[arg-type]
    print(f"Python decode path: {python:.1f} frames/CPU-s; Flink ÷ Python = {flink / python:.2f}")
    adaptive, savepoint = rows
    ok = all(row["lost"] == 0 for row in rows)
    print(
        verdict(
            ok,
            f"no loss in either rescale; pause adaptive {adaptive['pause_s']} s vs "
            f"savepoint {savepoint['pause_s']} s",
        )
    )


if __name__ == "__main__":
    main()
