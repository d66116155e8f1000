"""Models scalelab can build offline, by architecture name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx

from scalelab.errors import ConfigError, ModelError
from scalelab.models.info import ModelInfo, load_model_info
from scalelab.models.yolov8 import DEFAULT_OPSET, MIN_OPSET, SCALES, STRIDES, build_yolov8

# A builder takes (seed, imgsz, opset) and returns the model.
Builder = Callable[[int, int, int], onnx.ModelProto]


def _yolov8(scale: str) -> Builder:
    def build(seed: int, imgsz: int, opset: int) -> onnx.ModelProto:
        return build_yolov8(scale, seed=seed, imgsz=imgsz, opset=opset)

    return build


BUILDERS: dict[str, Builder] = {f"yolov8{scale}": _yolov8(scale) for scale in SCALES}


def build_model(
    name: str, out_path: str | Path, seed: int = 0, imgsz: int = 640, opset: int = DEFAULT_OPSET
) -> ModelInfo:
    """Build architecture ``name`` with random weights, write it to ``out_path``, describe it.

    The file is written under a temporary name and renamed, so a reader never
    sees half a model.
    """
    builder = BUILDERS.get(name)
    if builder is None:
        raise ModelError(name, f"unknown architecture (known: {', '.join(BUILDERS)})")
    if imgsz <= 0 or imgsz % max(STRIDES):
        raise ConfigError(f"imgsz must be a positive multiple of {max(STRIDES)}, got {imgsz}")
    if opset < MIN_OPSET:
        raise ConfigError(f"opset must be {MIN_OPSET} or newer, got {opset}")
    model = builder(seed, imgsz, opset)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    onnx.save(model, str(partial))
    partial.replace(out)
    return load_model_info(out)
