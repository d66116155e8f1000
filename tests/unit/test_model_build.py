"""The demo model: YOLOv8n built offline, checked against a real export, and model inspection."""

from __future__ import annotations

import collections
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from scalelab.errors import ConfigError, ModelError
from scalelab.models.info import ModelInfo, load_model_info
from scalelab.models.registry import build_model
from scalelab.models.yolov8 import build_yolov8

REFERENCE = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "reference"
    / "yolov8n-random-dynamic.onnx"
)
COMPARED_OPS = ("Conv", "Sigmoid", "Mul", "Concat", "Add", "Split", "MaxPool", "Resize", "Softmax")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ModelInfo:
    return build_model("yolov8n", tmp_path_factory.mktemp("model") / "yolov8n.onnx", seed=0)


@pytest.fixture(scope="module")
def reference() -> onnx.ModelProto:
    if not REFERENCE.is_file():
        pytest.skip(f"reference export not found at {REFERENCE} (needs ../shared/reference)")
    return onnx.load(str(REFERENCE))


def _session(model: str | Path | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _param_count(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def _conv_signatures(model: onnx.ModelProto) -> list[str]:
    """Weight shape, strides and pads of every Conv, sorted: the architecture's compute."""
    dims = {t.name: list(t.dims) for t in model.graph.initializer}
    signatures = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            signatures.append(f"{dims[node.input[1]]} s{attrs['strides']} p{attrs['pads']}")
    return sorted(signatures)


# --- the built model --------------------------------------------------------------------


def test_built_model_passes_the_onnx_checker(built: ModelInfo) -> None:
    onnx.checker.check_model(str(built.path), full_check=True)
    names = [n.name for n in onnx.load(str(built.path)).graph.node]
    assert len(names) == len(set(names))


def test_built_model_info(built: ModelInfo) -> None:
    assert built.input_name == "images" and built.input_shape == (None, 3, None, None)
    assert built.output_name == "output0" and built.output_shape == (None, 84, None)
    assert built.num_classes == 80 and built.class_names[:3] == ("person", "bicycle", "car")
    assert built.class_names[-1] == "toothbrush"
    assert built.opset == 18 and built.imgsz == (640, 640)
    assert built.producer.startswith("scalelab")
    assert built.sha256 == hashlib.sha256(built.path.read_bytes()).hexdigest()


def test_same_seed_same_model_other_seed_other_weights() -> None:
    first, again, other = (build_yolov8("n", seed=s).SerializeToString() for s in (0, 0, 1))
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("batch", "height", "width", "anchors"), [(1, 640, 640, 8400), (2, 480, 640, 6300)]
)
def test_runs_at_any_size(
    built: ModelInfo, batch: int, height: int, width: int, anchors: int
) -> None:
    images = np.random.default_rng(0).random((batch, 3, height, width), dtype=np.float32)
    (out,) = _session(built.path).run(None, {"images": images})
    assert out.shape == (batch, 84, anchors)
    assert np.isfinite(out).all()
    assert ((out[:, 4:] >= 0) & (out[:, 4:] <= 1)).all()


def test_anchor_centres_and_strides_follow_the_input_size() -> None:
    """The anchor grid the graph computes from shapes equals the one made in numpy."""
    model = build_yolov8("n")
    wanted = ["model.22/points/Unsqueeze_output_0", "model.22/strides/Transpose_output_0"]
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in wanted)
    images = np.zeros((1, 3, 96, 160), np.float32)
    _, points, strides = _session(model.SerializeToString()).run(None, {"images": images})
    expected_points, expected_strides = [], []
    for stride in (8, 16, 32):
        ys, xs = np.mgrid[0 : 96 // stride, 0 : 160 // stride] + 0.5
        expected_points.append(np.stack([xs.ravel(), ys.ravel()]))
        expected_strides.append(np.full(xs.size, stride))
    np.testing.assert_array_equal(points[0], np.concatenate(expected_points, axis=1))
    np.testing.assert_array_equal(strides[0], np.concatenate(expected_strides))


def test_larger_scale_builds() -> None:
    model = build_yolov8("s")
    assert 11.0e6 < _param_count(model) < 11.3e6  # Ultralytics: 11.2 M
    assert collections.Counter(n.op_type for n in model.graph.node)["Conv"] == 64


# --- against the reference export ------------------------------------------------------


def test_parameter_count_matches_reference(built: ModelInfo, reference: onnx.ModelProto) -> None:
    assert built.parameters == pytest.approx(_param_count(reference), rel=0.01)


def test_operator_mix_matches_reference(built: ModelInfo, reference: onnx.ModelProto) -> None:
    ours = collections.Counter(n.op_type for n in onnx.load(str(built.path)).graph.node)
    theirs = collections.Counter(n.op_type for n in reference.graph.node)
    assert {op: ours[op] for op in COMPARED_OPS} == {op: theirs[op] for op in COMPARED_OPS}


def test_convolutions_match_reference(built: ModelInfo, reference: onnx.ModelProto) -> None:
    assert _conv_signatures(onnx.load(str(built.path))) == _conv_signatures(reference)


def _optimized_ops(model: str | Path | bytes, out: Path) -> collections.Counter[str]:
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(out)
    options.log_severity_level = 3  # the optimized file is machine-specific: fine here
    ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(out)).graph.node)


def test_onnxruntime_optimizes_it_like_the_reference(
    built: ModelInfo, reference: onnx.ModelProto, tmp_path: Path
) -> None:
    ours = _optimized_ops(str(built.path), tmp_path / "ours.onnx")
    theirs = _optimized_ops(reference.SerializeToString(), tmp_path / "theirs.onnx")
    assert ours == theirs


def test_output_shape_matches_reference(built: ModelInfo, reference: onnx.ModelProto) -> None:
    images = np.random.default_rng(1).random((1, 3, 640, 640), dtype=np.float32)
    (ours,) = _session(built.path).run(None, {"images": images})
    (theirs,) = _session(reference.SerializeToString()).run(None, {"images": images})
    assert ours.shape == theirs.shape == (1, 84, 8400)


# --- registry ---------------------------------------------------------------------------


def test_unknown_architecture_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="yolov8n") as err:
        build_model("yolov99", tmp_path / "m.onnx")
    assert err.value.path == "yolov99"


def test_imgsz_must_be_a_multiple_of_32(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="multiple of 32"):
        build_model("yolov8n", tmp_path / "m.onnx", imgsz=100)


# --- load_model_info errors -------------------------------------------------------------


def _shaped_model(path: Path, input_shape: list[int], output_shape: list[int]) -> Path:
    """A model whose graph only declares the given input and output shapes."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output0"])],
        "shaped",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, output_shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def _model_error(path: Path) -> ModelError:
    with pytest.raises(ModelError) as err:
        load_model_info(path)
    assert err.value.path == str(path)
    assert str(path) in str(err.value)
    return err.value


def test_missing_file(tmp_path: Path) -> None:
    assert _model_error(tmp_path / "absent.onnx").reason == "no such file"


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\xff\x00 this is not a protobuf \x07" * 20)
    assert "not an ONNX model" in _model_error(path).reason


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert "not an ONNX model" in _model_error(path).reason


def test_input_not_an_rgb_image(tmp_path: Path) -> None:
    path = _shaped_model(tmp_path / "gray.onnx", [1, 1, 640, 640], [1, 84, 8400])
    reason = _model_error(path).reason
    assert "[1, 1, 640, 640]" in reason and "[batch, 3, height, width]" in reason


@pytest.mark.parametrize("shape", [[1, 8400, 84], [1, 84], [1, 4, 8400]])
def test_output_not_boxes_then_classes(tmp_path: Path, shape: list[int]) -> None:
    path = _shaped_model(tmp_path / "out.onnx", [1, 3, 640, 640], shape)
    assert "[batch, 4 + classes, anchors]" in _model_error(path).reason


def test_names_that_disagree_with_the_output(tmp_path: Path) -> None:
    path = _shaped_model(tmp_path / "names.onnx", [1, 3, 640, 640], [1, 6, 8400])
    model = onnx.load(str(path))
    helper.set_model_props(model, {"names": "{0: 'cat', 1: 'dog', 2: 'bird'}"})
    onnx.save(model, path)
    assert "3 classes but the output has 2" in _model_error(path).reason


def test_names_and_static_size_from_a_small_model(tmp_path: Path) -> None:
    path = _shaped_model(tmp_path / "ok.onnx", [1, 3, 320, 480], [1, 6, 3150])
    model = onnx.load(str(path))
    helper.set_model_props(model, {"names": "{0: 'cat', 1: 'dog'}"})
    onnx.save(model, path)
    info = load_model_info(path)
    assert info.class_names == ("cat", "dog") and info.imgsz == (320, 480)


@pytest.mark.skipif(
    importlib.util.find_spec("ultralytics") is not None, reason="ultralytics is installed"
)
def test_pt_without_ultralytics_says_how_to_install(tmp_path: Path) -> None:
    path = tmp_path / "yolov8n.pt"
    path.write_bytes(b"not really a checkpoint")
    assert "pip install 'scalelab[ultralytics]'" in _model_error(path).reason
