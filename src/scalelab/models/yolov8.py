"""YOLOv8 detection graphs built with ``onnx.helper``: real architecture, random weights.

No trained weights can be downloaded, so the demo model is the YOLOv8
architecture as Ultralytics exports it to ONNX with batch-norm folded into
the convolutions (Conv with bias, SiLU as ``x * sigmoid(x)``), fed with seeded
random weights. Compute cost, operator mix and output layout match a real
export; the detections are meaningless.

Weights are He-uniform (``±sqrt(6 / fan_in)``) from a seeded numpy
generator. With it activations shrink slowly with depth (RMS ~1e-3 at the
head of YOLOv8n, n/s/m and several seeds tried); PyTorch's default init, which
an untrained Ultralytics model has, takes them down to ~1e-10, and gains much
above He's make them grow without bound. Folded biases are zero, as for a
fresh batch-norm, and the head's last biases use the Detect prior (box logits
2.0, class logits ``log(5 / nc / (640 / stride)^2)``), so scores stay near
1e-4: the model reports no confident detections. Identical constant tensors
are stored once, as the exporter does, which makes the parameter count that
of a real export.

Initializers keep Ultralytics' state-dict names (``model.4.m.0.cv1.conv.weight``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import scalelab

COCO_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip

STRIDES = (8, 16, 32)
REG_MAX = 16
MIN_OPSET = 13  # Split, Unsqueeze and Slice take their sizes/axes as inputs from 13 on
DEFAULT_OPSET = 18


@dataclass(frozen=True)
class Scale:
    """Depth and width multipliers of one YOLOv8 size (n, s, m, l, x)."""

    depth: float
    width: float
    max_channels: int

    def channels(self, c: int) -> int:
        """Channel count of a layer whose yolov8.yaml width is ``c``."""
        return math.ceil(min(c, self.max_channels) * self.width / 8) * 8

    def repeats(self, n: int) -> int:
        """Number of bottlenecks of a C2f whose yolov8.yaml depth is ``n``."""
        return max(round(n * self.depth), 1) if n > 1 else n


SCALES: dict[str, Scale] = {
    "n": Scale(0.33, 0.25, 1024),
    "s": Scale(0.33, 0.50, 1024),
    "m": Scale(0.67, 0.75, 768),
    "l": Scale(1.00, 1.00, 512),
    "x": Scale(1.00, 1.25, 512),
}


class Feat(NamedTuple):
    """A feature map in the graph being built: its value name and channel count."""

    name: str
    ch: int


@dataclass
class Graph:
    """Accumulates nodes and initializers; stores identical constants once."""

    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[TensorProto] = field(default_factory=list)
    _pool: dict[tuple[str, tuple[int, ...], bytes], str] = field(default_factory=dict)

    def const(self, name: str, value: np.ndarray) -> str:
        """Add an initializer (or reuse an identical one) and return its name."""
        key = (value.dtype.str, value.shape, value.tobytes())
        if key not in self._pool:
            if any(t.name == name for t in self.initializers):
                raise ValueError(f"two different constants named {name!r}")
            self._pool[key] = name
            self.initializers.append(numpy_helper.from_array(value, name))
        return self._pool[key]

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant, named after its values."""
        label = "_".join(str(v).replace("-", "m") for v in values)
        return self.const(f"const_i64_{label}", np.array(values, dtype=np.int64))

    def scalar(self, value: int | float) -> str:
        """A 0-D int64 (for an int) or float32 (for a float) constant."""
        if isinstance(value, int):
            return self.const(f"const_i64_scalar_{value}", np.array(value, np.int64))
        return self.const(f"const_f32_scalar_{value}", np.array(value, np.float32))

    def op(self, op_type: str, inputs: list[str], name: str, out: str = "", **attrs: Any) -> str:
        """Add a one-output node and return its output (``out``, or derived from ``name``)."""
        outputs = [out or f"{name}_output_0"]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))
        return outputs[0]

    def op_n(
        self, op_type: str, inputs: list[str], name: str, n_out: int, **attrs: Any
    ) -> list[str]:
        """Add a node with ``n_out`` outputs and return their names."""
        outputs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))
        return outputs


# --- layers -----------------------------------------------------------------


def _conv_node(
    g: Graph, x: Feat, c_out: int, k: int, stride: int, prefix: str, bias: np.ndarray
) -> Feat:
    """A Conv node with a fresh random weight ``prefix.weight`` and bias ``prefix.bias``."""
    bound = math.sqrt(6 / (x.ch * k * k))  # He (Kaiming) uniform
    w = g.rng.uniform(-bound, bound, (c_out, x.ch, k, k)).astype(np.float32)
    inputs = [x.name, g.const(f"{prefix}.weight", w), g.const(f"{prefix}.bias", bias)]
    y = g.op(
        "Conv",
        inputs,
        f"{prefix}/Conv",
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[k // 2] * 4,
        dilations=[1, 1],
        group=1,
    )
    return Feat(y, c_out)


def conv2d(g: Graph, x: Feat, c_out: int, k: int, name: str, bias: np.ndarray) -> Feat:
    """A plain convolution (stride 1, same padding), no activation."""
    return _conv_node(g, x, c_out, k, 1, name, bias)


def silu(g: Graph, x: Feat, name: str) -> Feat:
    """SiLU as Sigmoid then Mul, the form the Ultralytics export has."""
    sig = g.op("Sigmoid", [x.name], f"{name}/Sigmoid")
    return Feat(g.op("Mul", [x.name, sig], f"{name}/Mul"), x.ch)


def conv(g: Graph, x: Feat, c_out: int, k: int, name: str, stride: int = 1) -> Feat:
    """Ultralytics ``Conv``: convolution with folded batch-norm, then SiLU."""
    y = _conv_node(g, x, c_out, k, stride, f"{name}.conv", np.zeros(c_out, np.float32))
    return silu(g, y, f"{name}/act")


def bottleneck(g: Graph, x: Feat, shortcut: bool, name: str) -> Feat:
    """Two 3x3 convs at constant width, with a residual add when ``shortcut``."""
    y = conv(g, conv(g, x, x.ch, 3, f"{name}.cv1"), x.ch, 3, f"{name}.cv2")
    return Feat(g.op("Add", [x.name, y.name], f"{name}/Add"), x.ch) if shortcut else y


def c2f(g: Graph, x: Feat, c_out: int, n: int, shortcut: bool, name: str) -> Feat:
    """CSP block with two convs: split in halves, chain ``n`` bottlenecks, concat all."""
    c = c_out // 2
    y = conv(g, x, 2 * c, 1, f"{name}.cv1")
    halves = g.op_n("Split", [y.name, g.ints(c, c)], f"{name}/Split", 2, axis=1)
    parts = [Feat(h, c) for h in halves]
    for i in range(n):
        parts.append(bottleneck(g, parts[-1], shortcut, f"{name}.m.{i}"))
    return conv(g, concat(g, parts, f"{name}/Concat"), c_out, 1, f"{name}.cv2")


def sppf(g: Graph, x: Feat, c_out: int, name: str, k: int = 5) -> Feat:
    """Spatial pyramid pooling (fast): three chained max-pools, concatenated."""
    y = [conv(g, x, x.ch // 2, 1, f"{name}.cv1")]
    for i in range(3):
        pooled = g.op(
            "MaxPool",
            [y[-1].name],
            f"{name}/m_{i}",
            kernel_shape=[k, k],
            strides=[1, 1],
            pads=[k // 2] * 4,
            dilations=[1, 1],
            ceil_mode=0,
        )
        y.append(Feat(pooled, y[0].ch))
    return conv(g, concat(g, y, f"{name}/Concat"), c_out, 1, f"{name}.cv2")


def upsample(g: Graph, x: Feat, name: str) -> Feat:
    """Nearest-neighbour 2x upsampling."""
    scales = g.const("const_f32_upsample_scales", np.array([1, 1, 2, 2], np.float32))
    y = g.op(
        "Resize",
        [x.name, "", scales],
        name,
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    return Feat(y, x.ch)


def concat(g: Graph, xs: list[Feat], name: str) -> Feat:
    """Channel concatenation."""
    return Feat(g.op("Concat", [x.name for x in xs], name, axis=1), sum(x.ch for x in xs))


# --- network ----------------------------------------------------------------


def backbone(g: Graph, x: Feat, s: Scale) -> tuple[Feat, Feat, Feat]:
    """Layers 0-9; returns the stride 8, 16 and 32 features."""
    x = conv(g, x, s.channels(64), 3, "model.0", stride=2)
    x = conv(g, x, s.channels(128), 3, "model.1", stride=2)
    x = c2f(g, x, s.channels(128), s.repeats(3), True, "model.2")
    x = conv(g, x, s.channels(256), 3, "model.3", stride=2)
    p3 = c2f(g, x, s.channels(256), s.repeats(6), True, "model.4")
    x = conv(g, p3, s.channels(512), 3, "model.5", stride=2)
    p4 = c2f(g, x, s.channels(512), s.repeats(6), True, "model.6")
    x = conv(g, p4, s.channels(1024), 3, "model.7", stride=2)
    x = c2f(g, x, s.channels(1024), s.repeats(3), True, "model.8")
    return p3, p4, sppf(g, x, s.channels(1024), "model.9")


def neck(g: Graph, p3: Feat, p4: Feat, p5: Feat, s: Scale) -> tuple[Feat, Feat, Feat]:
    """Layers 10-21: top-down then bottom-up feature pyramid."""
    n = s.repeats(3)
    x = concat(g, [upsample(g, p5, "model.10/Resize"), p4], "model.11/Concat")
    h4 = c2f(g, x, s.channels(512), n, False, "model.12")
    x = concat(g, [upsample(g, h4, "model.13/Resize"), p3], "model.14/Concat")
    out3 = c2f(g, x, s.channels(256), n, False, "model.15")
    x = concat(g, [conv(g, out3, out3.ch, 3, "model.16", stride=2), h4], "model.17/Concat")
    out4 = c2f(g, x, s.channels(512), n, False, "model.18")
    x = concat(g, [conv(g, out4, out4.ch, 3, "model.19", stride=2), p5], "model.20/Concat")
    out5 = c2f(g, x, s.channels(1024), n, False, "model.21")
    return out3, out4, out5


def _branch(g: Graph, x: Feat, c_mid: int, c_out: int, bias: float, name: str) -> Feat:
    """One Detect branch: two 3x3 Conv blocks, then a 1x1 conv to the logits."""
    y = conv(g, conv(g, x, c_mid, 3, f"{name}.0"), c_mid, 3, f"{name}.1")
    return conv2d(g, y, c_out, 1, f"{name}.2", np.full(c_out, bias, np.float32))


def _dims(g: Graph, shape: str, indices: tuple[int, ...], name: str) -> list[str]:
    """Scalars (int64) holding the sizes at ``indices`` of the 1-D ``shape``."""
    return [g.op("Gather", [shape, g.scalar(i)], f"{name}/Gather_{i}", axis=0) for i in indices]


def _to_1d(g: Graph, scalar: str, name: str) -> str:
    return g.op("Unsqueeze", [scalar, g.ints(0)], name)


def _centres(g: Graph, n: str, name: str) -> str:
    """Cell centres 0.5, 1.5, ... n - 0.5 along one axis."""
    r = g.op("Range", [g.scalar(0), n, g.scalar(1)], f"{name}/Range")
    r = g.op("Cast", [r], f"{name}/Cast", to=TensorProto.FLOAT)
    return g.op("Add", [r, g.scalar(0.5)], f"{name}/Add")


def _anchor_points(g: Graph, shape: str, stride: int, name: str) -> tuple[str, str]:
    """Cell centres ``[h*w, 2]`` (in cells) and their stride ``[h*w, 1]``.

    Computed from a feature map's runtime ``shape``, so the graph takes any input size.
    """
    h, w = _dims(g, shape, (2, 3), name)
    cx, cy = _centres(g, w, f"{name}/x"), _centres(g, h, f"{name}/y")
    grid_shape = g.op(
        "Concat",
        [g.op("Shape", [c], f"{name}/{d}/Shape") for c, d in ((cy, "y"), (cx, "x"))],
        f"{name}/grid_shape",
        axis=0,
    )
    column = g.op("Reshape", [cy, g.ints(-1, 1)], f"{name}/y/Reshape")
    row = g.op("Reshape", [cx, g.ints(1, -1)], f"{name}/x/Reshape")
    planes = [
        g.op(
            "Unsqueeze",
            [g.op("Expand", [v, grid_shape], f"{name}/{d}/Expand"), g.ints(-1)],
            f"{name}/{d}/Unsqueeze",
        )
        for v, d in ((row, "x"), (column, "y"))
    ]
    grid = g.op("Concat", planes, f"{name}/grid", axis=-1)
    points = g.op("Reshape", [grid, g.ints(-1, 2)], f"{name}/points")
    hw = _to_1d(g, g.op("Mul", [h, w], f"{name}/hw"), f"{name}/hw_1d")
    n_shape = g.op("Concat", [hw, g.ints(1)], f"{name}/strides_shape", axis=0)
    value = numpy_helper.from_array(np.array([stride], np.float32))
    strides = g.op("ConstantOfShape", [n_shape], f"{name}/strides", value=value)
    return points, strides


def _dfl(g: Graph, box: str, name: str) -> str:
    """Distribution focal loss decoding: [b, 64, A] -> expected distances [b, 4, A].

    Softmax over the 16 bins of each side, then a fixed 1x1 conv with weights
    0..15 takes the expectation.
    """
    shape = g.op("Shape", [box], f"{name}/Shape")
    b, a = (_to_1d(g, d, f"{d}_1d") for d in _dims(g, shape, (0, 2), name))
    split = g.op("Concat", [b, g.ints(4), g.ints(REG_MAX), a], f"{name}/bins_shape", axis=0)
    y = g.op("Reshape", [box, split], f"{name}/Reshape")
    y = g.op("Transpose", [y], f"{name}/Transpose", perm=[0, 2, 1, 3])
    y = g.op("Softmax", [y], f"{name}/Softmax", axis=1)
    arange = np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1)
    y = g.op(
        "Conv",
        [y, g.const("model.22.dfl.conv.weight", arange)],
        f"{name}/conv",
        kernel_shape=[1, 1],
        strides=[1, 1],
        pads=[0, 0, 0, 0],
        dilations=[1, 1],
        group=1,
    )
    out_shape = g.op("Concat", [b, g.ints(4), a], f"{name}/out_shape", axis=0)
    return g.op("Reshape", [y, out_shape], f"{name}/Reshape_1")


def _decode_boxes(g: Graph, dist: str, points: str, strides: str, name: str) -> str:
    """Left/top/right/bottom distances in cells -> xywh in pixels, [b, 4, A]."""
    lt = g.op("Slice", [dist, g.ints(0), g.ints(2), g.ints(1)], f"{name}/lt")
    rb = g.op("Slice", [dist, g.ints(2), g.ints(4), g.ints(1)], f"{name}/rb")
    x1y1 = g.op("Sub", [points, lt], f"{name}/x1y1")
    x2y2 = g.op("Add", [points, rb], f"{name}/x2y2")
    xy_sum = g.op("Add", [x1y1, x2y2], f"{name}/xy_sum")
    cxy = g.op("Div", [xy_sum, g.scalar(2.0)], f"{name}/cxy")
    wh = g.op("Sub", [x2y2, x1y1], f"{name}/wh")
    xywh = g.op("Concat", [cxy, wh], f"{name}/xywh", axis=1)
    return g.op("Mul", [xywh, strides], f"{name}/pixels")


def _anchor_rows(g: Graph, parts: list[str], name: str) -> str:
    """Per-level ``[n_i, k]`` tensors -> ``[k, A]``, anchors last like the output."""
    y = g.op("Concat", parts, name, axis=0)
    return g.op("Transpose", [y], f"{name}/Transpose", perm=[1, 0])


def detect_head(
    g: Graph, feats: tuple[Feat, Feat, Feat], nc: int, out: str, name: str = "model.22"
) -> str:
    """Decoupled head with DFL box decoding; writes ``out`` as ``[b, 4 + nc, anchors]``."""
    c2 = max(16, feats[0].ch // 4, REG_MAX * 4)
    c3 = max(feats[0].ch, min(nc, 100))
    shapes = [g.op("Shape", [x.name], f"{name}/Shape_{i}") for i, x in enumerate(feats)]
    (batch,) = _dims(g, shapes[0], (0,), name)
    batch = _to_1d(g, batch, f"{name}/batch")
    minus_one = g.ints(-1)
    box_shape = g.op("Concat", [batch, g.ints(4 * REG_MAX), minus_one], f"{name}/box_shape", axis=0)
    cls_shape = g.op("Concat", [batch, g.ints(nc), minus_one], f"{name}/cls_shape", axis=0)
    boxes, logits, points, strides = [], [], [], []
    for i, (x, s) in enumerate(zip(feats, STRIDES, strict=True)):
        box = _branch(g, x, c2, 4 * REG_MAX, 2.0, f"{name}.cv2.{i}")
        cls = _branch(g, x, c3, nc, math.log(5 / nc / (640 / s) ** 2), f"{name}.cv3.{i}")
        boxes.append(g.op("Reshape", [box.name, box_shape], f"{name}/box_{i}"))
        logits.append(g.op("Reshape", [cls.name, cls_shape], f"{name}/cls_{i}"))
        p, st = _anchor_points(g, shapes[i], s, f"{name}/anchors_{i}")
        points.append(p)
        strides.append(st)
    box_all = g.op("Concat", boxes, f"{name}/boxes", axis=-1)
    cls_all = g.op("Concat", logits, f"{name}/logits", axis=-1)
    anchors = _anchor_rows(g, points, f"{name}/points")
    anchors = g.op("Unsqueeze", [anchors, g.ints(0)], f"{name}/points/Unsqueeze")
    stride_row = _anchor_rows(g, strides, f"{name}/strides")
    dbox = _decode_boxes(g, _dfl(g, box_all, f"{name}/dfl"), anchors, stride_row, f"{name}/dbox")
    scores = g.op("Sigmoid", [cls_all], f"{name}/scores")
    return g.op("Concat", [dbox, scores], f"{name}/output", out=out, axis=1)


# --- model ------------------------------------------------------------------


def metadata(scale: str, seed: int, imgsz: int, names: tuple[str, ...]) -> dict[str, str]:
    """Metadata in the Ultralytics export convention, so workers find names and size."""
    return {
        "description": f"scalelab demo YOLOv8{scale}: real architecture, random weights "
        f"(seed {seed}), not trained",
        "author": "scalelab",
        "task": "detect",
        "stride": str(max(STRIDES)),
        "imgsz": str([imgsz, imgsz]),
        "names": str(dict(enumerate(names))),
        "seed": str(seed),
    }


def _float_value(name: str, dims: list[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def build_yolov8(
    scale: str = "n", seed: int = 0, imgsz: int = 640, opset: int = DEFAULT_OPSET
) -> onnx.ModelProto:
    """The YOLOv8 detector of size ``scale`` for the 80 COCO classes, random weights.

    Input ``images [batch, 3, height, width]`` (height and width multiples of
    32), output ``output0 [batch, 84, anchors]``: xywh in pixels, then class
    scores. ``imgsz`` only goes into the metadata: the graph takes any size.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown YOLOv8 scale {scale!r} (known: {', '.join(SCALES)})")
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is too old: the graph needs opset {MIN_OPSET} or newer")
    g = Graph(np.random.default_rng(seed))
    feats = neck(g, *backbone(g, Feat("images", 3), SCALES[scale]), SCALES[scale])
    detect_head(g, feats, len(COCO_NAMES), out="output0")
    inputs = [_float_value("images", ["batch", 3, "height", "width"])]
    outputs = [_float_value("output0", ["batch", 4 + len(COCO_NAMES), "anchors"])]
    graph = helper.make_graph(g.nodes, f"yolov8{scale}", inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="scalelab",
        producer_version=scalelab.__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    helper.set_model_props(model, metadata(scale, seed, imgsz, COCO_NAMES))
    # Inferred intermediate shapes (as the Ultralytics export carries) let ONNX
    # Runtime fold the head's shape arithmetic the same way it does for a real export.
    return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
