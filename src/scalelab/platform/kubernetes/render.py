"""`scalelab render`: every manifest a run would apply, one file per object, checked offline."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from scalelab.platform.kubernetes import validate
from scalelab.platform.kubernetes.errors import ManifestError
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.plan import Plan
from scalelab.run.record import new_run_id
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec


def to_yaml(obj: Manifest) -> str:
    """Block-style YAML; multi-line strings (the spec, the JMX rules) as literal blocks."""
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(_literal(obj), out)
    return out.getvalue()


def _literal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value


def file_name(index: int, obj: Manifest) -> str:
    name = re.sub(r"[^a-z0-9.-]", "-", obj["metadata"]["name"].lower())
    return f"{index:02d}-{obj['kind'].lower()}-{name}.yaml"


def check(objects: list[Manifest]) -> list[str]:
    """Built-in kinds against the 1.30 schemas (strict) when kubernetes-validate is installed,
    custom resources by shape always."""
    if validate.have_validator():
        return validate.validate_objects(objects)
    from scalelab.platform.kubernetes import crds

    return [p for obj in objects if crds.is_custom(obj) for p in crds.check_custom(obj)]


def render(spec: ExperimentSpec, out_dir: Path, run_id: str | None = None) -> list[Path]:
    """Write the run's manifests into `out_dir` (emptied of earlier renders) and return them."""
    run_id = run_id or new_run_id(spec.name, dump_spec(spec))
    objects = Plan.for_spec(spec, run_id).all_objects()
    problems = check(objects)
    if problems:
        raise ManifestError(problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("[0-9][0-9]-*.yaml"):
        old.unlink()
    written = []
    for index, obj in enumerate(objects):
        path = out_dir / file_name(index, obj)
        path.write_text(to_yaml(obj))
        written.append(path)
    return written
