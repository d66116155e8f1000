"""Demo YOLOv8n (built offline, random weights) vs the reference Ultralytics export.

Builds the demo model, then in the same process compares it with
``../shared/reference/yolov8n-random-dynamic.onnx``: parameter count, output
shape, and ONNX Runtime CPU throughput at 640x640 for batch 1 and 4 with 1 and
2 intra-op threads. The two models' runs are interleaved one by one (demo,
reference, reference, demo, ...) after a warm-up, so machine drift hits both
alike; thread spinning is off in both sessions, so one model's idle threads
do not slow the other's runs.

On a shared machine other processes only ever slow a run down, so img/s is
batch / best run time, the estimate of each model's own cost they disturb
least, and demo/ref is the median over rounds of the ratio of the round's two
adjacent runs, which a burst of load moves only when it hits most rounds.
The ratio of best runs is printed too; when the two ratios disagree, the
machine was busy.

Goal: parameter count within 1 %, same output shape, throughput within 10 %.
Run: ``.venv/bin/python bench/model_vs_reference.py [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from scalelab.models.info import load_model_info
from scalelab.models.registry import build_model

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
REFERENCE_MODEL = REFERENCE / "yolov8n-random-dynamic.onnx"
CONFIGS = [(1, 1), (1, 2), (4, 1), (4, 2)]  # (batch, intra-op threads)
WARMUP_RUNS = 3
MIN_RUNS = 40
MAX_STRETCH = 4
GOAL_PARAMS = 0.01
GOAL_SPEED = 0.10


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle intra-op threads otherwise spin after a run and take the cores from
    # the other model's next run: the second run of each round came out ~25 %
    # slower, whichever model it was.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed_run(sess: ort.InferenceSession, images: np.ndarray) -> float:
    started = time.perf_counter()
    sess.run(None, {"images": images})
    return time.perf_counter() - started


def compare(
    paths: dict[str, Path], batch: int, threads: int, seconds: float
) -> dict[str, list[float]]:
    """Per-run seconds of every model in ``paths``, runs interleaved A B B A A B ...

    Runs for ``seconds`` per model and at least ``MIN_RUNS`` runs each, unless
    that takes more than ``MAX_STRETCH`` times as long (a very busy machine).
    """
    images = np.random.default_rng(0).random((batch, 3, 640, 640), dtype=np.float32)
    sessions = {name: session(path, threads) for name, path in paths.items()}
    for sess in sessions.values():
        for _ in range(WARMUP_RUNS):
            timed_run(sess, images)
    runs: dict[str, list[float]] = {name: [] for name in sessions}
    order = list(sessions)
    started = time.perf_counter()
    while time.perf_counter() - started < MAX_STRETCH * len(runs) * seconds and (
        min(sum(r) for r in runs.values()) < seconds
        or min(len(r) for r in runs.values()) < MIN_RUNS
    ):
        for name in order:
            runs[name].append(timed_run(sessions[name], images))
        order.reverse()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per model and config")
    parser.add_argument("--reference", type=Path, default=REFERENCE_MODEL)
    args = parser.parse_args()
    if not args.reference.is_file():
        raise SystemExit(f"reference model not found: {args.reference}")
    with tempfile.TemporaryDirectory() as tmp:
        demo = build_model("yolov8n", Path(tmp) / "yolov8n.onnx", seed=0)
        ref = load_model_info(args.reference)
        print(
            f"demo yolov8n vs reference export, 640x640, ONNX Runtime {ort.__version__} CPU, "
            f"{os.cpu_count()} CPUs, ~{args.seconds:g} s per model and config, interleaved"
        )
        ratio = demo.parameters / ref.parameters
        verdict = "ok" if abs(ratio - 1) <= GOAL_PARAMS else "MISSED"
        print(
            f"parameters: demo {demo.parameters:,}, reference {ref.parameters:,}, "
            f"demo/ref {ratio:.4f} (goal within {GOAL_PARAMS:.0%}) {verdict}"
        )
        shapes = {
            name: _output_shape(path) for name, path in (("demo", demo.path), ("ref", ref.path))
        }
        verdict = "ok" if shapes["demo"] == shapes["ref"] else "MISSED"
        print(f"output at batch 1: demo {shapes['demo']}, reference {shapes['ref']} {verdict}")
        print(
            f"{'batch':>5} {'threads':>7} {'demo img/s':>10} {'ref img/s':>10} "
            f"{'demo/ref':>8} {'of best':>7} {'rounds':>6}"
        )
        for batch, threads in CONFIGS:
            runs = compare({"demo": demo.path, "ref": ref.path}, batch, threads, args.seconds)
            best = {name: batch / min(r) for name, r in runs.items()}
            speed = float(np.median(np.divide(runs["ref"], runs["demo"])))
            verdict = "ok" if abs(speed - 1) <= GOAL_SPEED else "MISSED"
            print(
                f"{batch:>5} {threads:>7} {best['demo']:>10.1f} {best['ref']:>10.1f} "
                f"{speed:>8.3f} {best['demo'] / best['ref']:>7.3f} {len(runs['demo']):>6}"
                f"  (goal within {GOAL_SPEED:.0%}) {verdict}"
            )


def _output_shape(path: Path) -> list[int]:
    images = np.zeros((1, 3, 640, 640), np.float32)
    return list(session(path, 2).run(None, {"images": images})[0].shape)


if __name__ == "__main__":
    main()
