"""Bare ONNX Runtime throughput of a detector model, in images per second.

Nothing but ``session.run`` on a ready float32 batch: no decode, no
preprocessing, no postprocessing, no Kafka. It is the denominator of the
pipeline-efficiency benchmark, so it uses the worker's own session options.

    .venv/bin/python bench/inference_bare.py [MODEL] --threads 1 2 --batch 1 4 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from scalelab.inference.detector import DEFAULT_IMGSZ, select_providers, session_options

REFERENCE_MODEL = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "reference"
    / "yolov8n-random-dynamic.onnx"
)


def bare_throughput(
    model_path: str | Path,
    threads: int,
    batch: int,
    seconds: float = 5.0,
    imgsz: int = DEFAULT_IMGSZ,
) -> float:
    """Images per second of ``session.run`` on a ``batch``-sized input for ``seconds``.

    One untimed warm-up run comes first (ONNX Runtime allocates on the first call).
    """
    session = ort.InferenceSession(
        str(model_path), sess_options=session_options(threads), providers=select_providers(None)
    )
    model_input = session.get_inputs()[0]
    height, width = (d if isinstance(d, int) and d > 0 else imgsz for d in model_input.shape[2:])
    images = np.random.default_rng(0).random((batch, 3, height, width), dtype=np.float32)
    feed = {model_input.name: images}
    session.run(None, feed)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, feed)
        done += batch
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(REFERENCE_MODEL), help="ONNX model path")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per setting")
    parser.add_argument("--imgsz", type=int, default=DEFAULT_IMGSZ, help="size for dynamic dims")
    args = parser.parse_args(argv)
    print(f"model {args.model}")
    print(f"onnxruntime {ort.__version__}, {os.cpu_count()} CPUs, {args.seconds:g} s per setting")
    print(f"{'threads':>7} {'batch':>5} {'img/s':>8}")
    for threads in args.threads:
        for batch in args.batch:
            rate = bare_throughput(args.model, threads, batch, args.seconds, args.imgsz)
            print(f"{threads:>7} {batch:>5} {rate:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
