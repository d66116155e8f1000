"""Inspect a detector model file: what it takes, what it returns, what it is.

A model scalelab can run is an ONNX graph with one image input
``[batch, 3, height, width]`` and a first output ``[batch, 4 + classes, anchors]``
(xywh, then one score per class), the layout of Ultralytics' YOLOv8 and later
exports. Class names and the nominal input size come from the model's metadata
when it has them (Ultralytics writes ``names`` and ``imgsz``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from scalelab.errors import ModelError

_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class ModelInfo:
    """What a worker needs to know about a model file. Dynamic dimensions are None.

    ``parameters`` counts the values stored in the initializers (weights,
    biases and the few shape constants), as they are in the file: tensors
    an exporter stored once and shared count once.
    """

    path: Path
    sha256: str
    input_name: str
    input_shape: Shape
    output_name: str
    output_shape: Shape
    num_classes: int
    class_names: tuple[str, ...]
    parameters: int
    opset: int
    imgsz: tuple[int, int] | None
    producer: str

    def rows(self) -> list[tuple[str, str]]:
        """Label/value pairs for display."""
        names = ", ".join(self.class_names[:5]) + (", ..." if self.num_classes > 5 else "")
        return [
            ("path", str(self.path)),
            ("sha256", self.sha256),
            ("input", f"{self.input_name} {_fmt_shape(self.input_shape)}"),
            ("output", f"{self.output_name} {_fmt_shape(self.output_shape)}"),
            ("classes", f"{self.num_classes} ({names})"),
            ("parameters", f"{self.parameters:,}"),
            ("opset", str(self.opset)),
            ("imgsz", "unknown" if self.imgsz is None else f"{self.imgsz[0]}x{self.imgsz[1]}"),
            ("producer", self.producer or "unknown"),
        ]


def load_model_info(path: str | Path) -> ModelInfo:
    """Read and check a model file; a ``.pt`` is exported to ONNX first.

    Raises ModelError for a missing file, a file that is not ONNX, or a graph
    not shaped like a detector.
    """
    onnx_path = ensure_onnx(Path(path))
    model = _load_onnx(onnx_path)
    graph = model.graph
    image = _image_input(onnx_path, model)
    output = graph.output[0]
    input_shape, output_shape = _shape(image), _shape(output)
    _check_input(onnx_path, image.name, input_shape)
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("end2end", "").lower() == "true":
        raise ModelError(
            str(onnx_path), "end-to-end exports (NMS inside the model) are not supported"
        )
    num_classes = _check_output(onnx_path, output.name, output_shape)
    return ModelInfo(
        path=onnx_path,
        sha256=file_sha256(onnx_path),
        input_name=image.name,
        input_shape=input_shape,
        output_name=output.name,
        output_shape=output_shape,
        num_classes=num_classes,
        class_names=_class_names(onnx_path, meta.get("names"), num_classes),
        parameters=sum(math.prod(t.dims) for t in graph.initializer),
        opset=next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0),
        imgsz=_imgsz(meta.get("imgsz"), input_shape),
        producer=" ".join(filter(None, (model.producer_name, model.producer_version))),
    )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def ensure_onnx(path: Path) -> Path:
    """The ONNX file for ``path``: itself, or for a ``.pt`` its Ultralytics export.

    The export is written next to the ``.pt`` and reused while it is newer.
    """
    if not path.exists():
        raise ModelError(str(path), "no such file")
    if not path.is_file():
        raise ModelError(str(path), "not a file")
    if path.suffix != ".pt":
        return path
    exported = path.with_suffix(".onnx")
    if exported.exists() and exported.stat().st_mtime >= path.stat().st_mtime:
        return exported
    return _export_pt(path)


def _export_pt(path: Path) -> Path:
    if importlib.util.find_spec("ultralytics") is None:
        raise ModelError(
            str(path),
            "a .pt model is converted to ONNX with Ultralytics, which is not installed: "
            "pip install 'scalelab[ultralytics]' (or export it to .onnx yourself)",
        )
    from ultralytics import YOLO

    try:
        return Path(YOLO(str(path)).export(format="onnx", dynamic=True))
    except Exception as exc:  # Ultralytics raises whatever torch or its own checks raise
        raise ModelError(str(path), f"Ultralytics could not export it to ONNX: {exc}") from exc


def _load_onnx(path: Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError) as exc:
        raise ModelError(str(path), f"not an ONNX model ({exc})") from exc
    if not model.opset_import or not model.graph.output:
        raise ModelError(str(path), "not an ONNX model (no operator set or no graph outputs)")
    return model


def _image_input(path: Path, model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The one graph input that is not an initializer (old exports list weights as inputs)."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ModelError(str(path), f"expected one image input, found {len(inputs)} ({names})")
    elem_type = inputs[0].type.tensor_type.elem_type
    if elem_type not in _FLOAT_TYPES:
        type_name = onnx.TensorProto.DataType.Name(elem_type)
        raise ModelError(str(path), f"input {inputs[0].name} is {type_name}, expected float")
    return inputs[0]


def _shape(value: onnx.ValueInfoProto) -> Shape:
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _check_input(path: Path, name: str, shape: Shape) -> None:
    if len(shape) != 4 or shape[1] != 3:
        raise ModelError(
            str(path), f"input {name} is {_fmt_shape(shape)}, expected [batch, 3, height, width]"
        )


def _check_output(path: Path, name: str, shape: Shape) -> int:
    """Check ``[batch, 4 + classes, anchors]`` and return the number of classes."""
    expected = "expected [batch, 4 + classes, anchors]"
    if len(shape) != 3 or shape[1] is None or shape[1] < 5:
        raise ModelError(str(path), f"output {name} is {_fmt_shape(shape)}, {expected}")
    if shape[2] is not None and shape[2] < shape[1]:
        raise ModelError(
            str(path), f"output {name} is {_fmt_shape(shape)}: looks transposed, {expected}"
        )
    return shape[1] - 4


def _class_names(path: Path, raw: str | None, num_classes: int) -> tuple[str, ...]:
    """Names from Ultralytics' ``names`` metadata, by class index, else "0", "1", ...

    The metadata is a dict literal ``{index: name}`` (or a list, in index order). A
    dict is read by its keys, never by its order: ``{1: 'b', 0: 'a'}`` is ``('a', 'b')``.
    """
    if raw is None:
        return tuple(str(i) for i in range(num_classes))
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ModelError(
            str(path), f"metadata 'names' is not a dict of class names: {exc}"
        ) from exc
    if isinstance(parsed, list | tuple):
        parsed = dict(enumerate(parsed))
    if not isinstance(parsed, dict) or len(parsed) != num_classes:
        count = len(parsed) if isinstance(parsed, dict) else "no"
        raise ModelError(
            str(path), f"metadata names {count} classes but the output has {num_classes}"
        )
    by_index = {_class_index(key): name for key, name in parsed.items()}
    if sorted(k for k in by_index if k is not None) != list(range(num_classes)):
        keys = ", ".join(sorted(map(repr, parsed)))
        raise ModelError(
            str(path), f"metadata names has keys {keys}, expected the indices 0..{num_classes - 1}"
        )
    return tuple(str(by_index[i]) for i in range(num_classes))


def _class_index(key: object) -> int | None:
    """A names key as a class index (ints, or digit strings some exporters write)."""
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    return None


def _imgsz(raw: str | None, input_shape: Shape) -> tuple[int, int] | None:
    """Nominal input size: metadata ``imgsz`` ([h, w] or one int), else a static input."""
    try:
        value = ast.literal_eval(raw) if raw else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = None
    if isinstance(value, int):
        return value, value
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
    ):
        return value[0], value[1]
    h, w = input_shape[2:]
    return (h, w) if h is not None and w is not None else None


def _fmt_shape(shape: Shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
