"""Turn the spec's `workload.model` into a model file, checked before anything starts."""

from __future__ import annotations

from pathlib import Path

from scalelab import paths
from scalelab.models.info import ModelInfo, load_model_info
from scalelab.models.registry import BUILDERS, build_model
from scalelab.spec.models import YoloWorkload


def resolve_model(workload: YoloWorkload, base_dir: Path | None) -> ModelInfo:
    """A built-in demo model by name (built offline once, then reused) or a user's file."""
    name = workload.model
    if name in BUILDERS:
        target = paths.models_dir() / f"{name}.onnx"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            build_model(name, target)
        return load_model_info(target)
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return load_model_info(path)
