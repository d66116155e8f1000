"""What a model's own metadata decides: class names by index and the input size.

The models are real ONNX files run by ONNX Runtime: small graphs made with
onnx.helper, and the project's own YOLOv8n builder.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from scalelab.errors import ModelError
from scalelab.inference.detector import Detector, FrameResult
from scalelab.models.info import load_model_info
from scalelab.models.registry import build_model


def dynamic_model(
    path: Path,
    metadata: dict[str, str] | None = None,
    input_dims: tuple[int | str, ...] = ("batch", 3, "height", "width"),
    dtype: int = TensorProto.FLOAT,
) -> Path:
    """``[batch, 3, h, w]`` → ``[batch, 4 + 2, h/32 * w/32]``, one anchor per 32-pixel cell.

    Each anchor's box channels sum the cell's pixels times 1e-4; its class-0 score
    times 2e-4 and its class-1 score times 1e-4, so a bright frame is class 0.
    """
    per_channel = [1e-4] * 4 + [2e-4, 1e-4]
    weights = np.repeat(np.array(per_channel, np.float32), 3 * 32 * 32).reshape(6, 3, 32, 32)
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["c"], strides=[32, 32]),
        helper.make_node("Reshape", ["c", "s"], ["output0"]),
    ]
    if dtype != TensorProto.FLOAT:
        nodes.insert(0, helper.make_node("Cast", ["images_in"], ["images"], to=TensorProto.FLOAT))
    graph = helper.make_graph(
        nodes,
        "dynamic",
        [
            helper.make_tensor_value_info(
                "images" if dtype == TensorProto.FLOAT else "images_in", dtype, list(input_dims)
            )
        ],  # fmt: skip
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, "anchors"])],
        [
            helper.make_tensor("w", TensorProto.FLOAT, [6, 3, 32, 32], weights.ravel().tolist()),
            helper.make_tensor("s", TensorProto.INT64, [3], [0, 6, -1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, metadata or {})
    onnx.save(model, path)
    return path


def bright_frame(height: int = 64, width: int = 64) -> bytes:
    ok, encoded = cv2.imencode(".png", np.full((height, width, 3), 255, np.uint8))
    assert ok
    return encoded.tobytes()


# --- class names -----------------------------------------------------------------------


def test_names_are_read_by_index_not_by_metadata_order(tmp_path: Path) -> None:
    model = dynamic_model(tmp_path / "m.onnx", {"names": "{1: 'bicycle', 0: 'person'}"})
    assert load_model_info(model).class_names == ("person", "bicycle")
    detector = Detector(model, imgsz=64)
    assert detector.names == ["person", "bicycle"]
    [item] = detector.detect_batch([bright_frame()]).items
    assert isinstance(item, FrameResult)
    assert {(d.class_id, d.class_name) for d in item.detections} == {(0, "person")}


def test_a_names_list_is_in_index_order(tmp_path: Path) -> None:
    model = dynamic_model(tmp_path / "m.onnx", {"names": "['person', 'bicycle']"})
    assert load_model_info(model).class_names == ("person", "bicycle")


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        ("{0: 'a', 2: 'c'}", "expected the indices 0..1"),
        ("{'x': 'a', 'y': 'b'}", "expected the indices 0..1"),
        ("{0: 'a'}", "names 1 classes but the output has 2"),
        ("{'²': 'a', 1: 'b'}", "expected the indices 0..1"),
        ("{[0]: 'a', 1: 'b'}", "is not a dict of class names"),
    ],
)
def test_names_that_do_not_cover_the_classes_are_refused(
    tmp_path: Path, names: str, reason: str
) -> None:
    model = dynamic_model(tmp_path / "m.onnx", {"names": names})
    with pytest.raises(ModelError, match=reason):
        load_model_info(model)
    with pytest.raises(ModelError, match=reason):
        Detector(model)  # the worker refuses what `scalelab model info` refuses


# --- input size --------------------------------------------------------------------------


def test_a_model_exported_at_320_runs_at_320(tmp_path: Path) -> None:
    model = dynamic_model(tmp_path / "m.onnx", {"imgsz": "[320, 320]"})
    detector = Detector(model)
    assert detector.input_size == (320, 320)
    [item] = detector.detect_batch([bright_frame(480, 640)]).items
    assert isinstance(item, FrameResult) and item.detections


def test_the_spec_size_overrides_the_metadata(tmp_path: Path) -> None:
    model = dynamic_model(tmp_path / "m.onnx", {"imgsz": "[320, 320]"})
    assert Detector(model, imgsz=640).input_size == (640, 640)
    assert Detector(model, imgsz=(256, 384)).input_size == (256, 384)


def test_without_metadata_a_static_input_or_640(tmp_path: Path) -> None:
    assert Detector(dynamic_model(tmp_path / "d.onnx")).input_size == (640, 640)
    static = dynamic_model(tmp_path / "s.onnx", input_dims=(1, 3, 224, 288))
    assert Detector(static).input_size == (224, 288)


def test_the_built_demo_model_keeps_its_size(tmp_path: Path) -> None:
    built = build_model("yolov8n", tmp_path / "yolov8n-320.onnx", imgsz=320)
    assert built.imgsz == (320, 320) and built.input_shape[2:] == (None, None)
    detector = Detector(built.path)
    assert detector.input_size == (320, 320) and len(detector.names) == 80
    assert detector.names[:2] == ["person", "bicycle"]
    [item] = detector.detect_batch([bright_frame(480, 640)]).items
    assert isinstance(item, FrameResult)


# --- one set of checks -------------------------------------------------------------------


def test_the_detector_refuses_a_float16_input(tmp_path: Path) -> None:
    model = dynamic_model(tmp_path / "h.onnx", dtype=TensorProto.FLOAT16)
    load_model_info(model)  # a detector model by shape...
    with pytest.raises(ModelError, match="expected float32"):
        Detector(model)  # ...but the worker feeds float32


def test_an_end_to_end_export_is_refused_by_both(tmp_path: Path) -> None:
    model = dynamic_model(tmp_path / "e.onnx", {"end2end": "True"})
    for load in (load_model_info, Detector):
        with pytest.raises(ModelError, match="end-to-end exports"):
            load(model)
