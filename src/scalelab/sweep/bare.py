"""Bare ONNX Runtime throughput of a spec's model: the capacity search's upper bound.

Nothing but `session.run` on a ready batch with the worker's own session
options (no decode, no Kafka), so no pipeline built on it can serve more.
For `n` workers the bound is the single-worker rate × min(n, cores ÷ threads):
workers beyond the machine's cores add no compute.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalelab.spec.models import YoloWorkload

DEFAULT_SECONDS = 3.0


@dataclass(frozen=True)
class BareRate:
    per_worker: float
    """Images per second of one worker's session."""
    cores: int
    threads: int

    def bound(self, workers: int) -> float:
        """Upper bound of `workers` workers on this machine (images per second)."""
        parallel = min(workers, max(1, self.cores // self.threads))
        return self.per_worker * parallel


def measure(
    workload: YoloWorkload, base_dir: Path | None, seconds: float = DEFAULT_SECONDS
) -> BareRate:
    """Time `session.run` of the workload's model with its threads, batch and image size."""
    import onnxruntime as ort

    from scalelab.inference.detector import select_providers, session_options
    from scalelab.run.model import resolve_model

    model = resolve_model(workload, base_dir)
    providers = select_providers(["cuda"] if workload.device == "gpu" else None)
    session = ort.InferenceSession(
        str(model.path), sess_options=session_options(workload.threads), providers=providers
    )
    model_input = session.get_inputs()[0]
    size = workload.imgsz or 640
    height, width = (d if isinstance(d, int) and d > 0 else size for d in model_input.shape[2:])
    batch = workload.batch_size
    feed = {model_input.name: np.random.default_rng(0).random((batch, 3, height, width), "f4")}
    session.run(None, feed)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, feed)
        done += batch
    rate = done / (time.perf_counter() - start)
    return BareRate(rate, os.cpu_count() or 1, workload.threads)
