"""Sweeps and capacity search: many ordinary runs answering one research question.

`open_sweep(id)` is the notebook entry point; it imports neither Kafka nor
ONNX Runtime (the modules that run experiments are imported only by the CLI).
"""

from scalelab.sweep.table import open_sweep

__all__ = ["open_sweep"]
