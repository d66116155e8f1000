"""Load a spec from YAML: strict parsing, `--set` overrides, errors with file:line.

ruamel.yaml keeps the line of every key, so a pydantic error location such as
``("broker", "partitions")`` maps back to the line the user wrote.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from scalelab.errors import SpecError, SpecProblem
from scalelab.spec.checks import run_checks
from scalelab.spec.models import ExperimentSpec

OVERRIDE_SOURCE = "--set"


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Parse, override, validate and check a spec file; raise SpecError listing every problem."""
    path = Path(path)
    tree = _read_yaml(path)
    overridden = apply_overrides(tree, overrides)
    spec = _validate(tree, path, overridden)
    problems = run_checks(spec)
    if problems:
        raise SpecError([_locate(p, tree, path, overridden) for p in problems])
    return spec


def load_resolved(path: Path, base_dir: Path | None = None) -> ExperimentSpec:
    """A run's resolved spec.yaml (already checked when the run started)."""
    spec = ExperimentSpec.model_validate(YAML(typ="safe").load(path.read_text()))
    spec.base_dir = base_dir
    return spec


def _read_yaml(path: Path) -> CommentedMap:
    if not path.is_file():
        raise SpecError([SpecProblem("", f"spec file not found: {path}")])
    try:
        tree = YAML(typ="rt").load(path.read_text())
    except MarkedYAMLError as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise SpecError(
            [SpecProblem("", f"not valid YAML: {err.problem}", str(path), line)]
        ) from err
    if not isinstance(tree, CommentedMap):
        raise SpecError([SpecProblem("", "a spec must be a YAML mapping", str(path), 1)])
    return tree


def apply_overrides(tree: CommentedMap, overrides: Iterable[str]) -> set[str]:
    """Apply ``key.path=value`` overrides in place; values are parsed as YAML scalars."""
    applied = set()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError([SpecProblem(item, "--set expects key.path=value", OVERRIDE_SOURCE)])
        value = YAML(typ="safe").load(io.StringIO(raw)) if raw else ""
        _set_path(tree, key.split("."), value, item)
        applied.add(key)
    return applied


def _set_path(tree: CommentedMap, keys: list[str], value: Any, item: str) -> None:
    node: Any = tree
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key) if isinstance(node, dict) else None
        if child is None:
            child = CommentedMap()
            node[key] = child
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise SpecError([SpecProblem(where, f"is not a section, cannot apply {item}")])
        node = child
    node[keys[-1]] = value


def _validate(tree: CommentedMap, path: Path, overridden: set[str]) -> ExperimentSpec:
    try:
        spec = ExperimentSpec.model_validate(_plain(tree))
    except ValidationError as err:
        raise SpecError([_problem(e, tree, path, overridden) for e in err.errors()]) from err
    spec.base_dir = path.resolve().parent
    return spec


def _plain(node: Any) -> Any:
    """ruamel's commented containers → plain dicts and lists for pydantic."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _problem(error: Any, tree: CommentedMap, path: Path, overridden: set[str]) -> SpecProblem:
    keys = [str(part) for part in error["loc"]]
    shown_path, line = _find_line(tree, keys)
    value = error.get("input") if error["type"] != "missing" else None
    if isinstance(value, dict | list):
        value = None
    problem = SpecProblem(shown_path, _message(error), str(path), line, value)
    return _mark_override(problem, overridden)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (not part of the spec; check the spelling)"
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"])


def _locate(
    problem: SpecProblem, tree: CommentedMap, path: Path, overridden: set[str]
) -> SpecProblem:
    shown_path, line = _find_line(tree, problem.path.split("."))
    located = SpecProblem(shown_path, problem.message, str(path), line, problem.value)
    return _mark_override(located, overridden)


def _mark_override(problem: SpecProblem, overridden: set[str]) -> SpecProblem:
    if problem.path in overridden:
        return SpecProblem(problem.path, problem.message, OVERRIDE_SOURCE, None, problem.value)
    return problem


def _find_line(tree: CommentedMap, keys: list[str]) -> tuple[str, int | None]:
    """Walk the YAML tree along a pydantic location; return the shown path and 1-based line.

    Location parts that are not keys in the document (a discriminated union's tag,
    for instance) are dropped from the shown path.
    """
    node: Any = tree
    shown: list[str] = []
    line = 1
    for key in keys:
        if isinstance(node, CommentedMap) and key in node:
            line = _key_line(node, key, line)
            node = node[key]
            shown.append(key)
        elif isinstance(node, CommentedSeq) and key.isdigit() and int(key) < len(node):
            line = node.lc.item(int(key))[0] + 1
            node = node[int(key)]
            shown.append(key)
        elif isinstance(node, CommentedMap) and _is_union_tag(node, key):
            continue
        else:
            shown.append(key)
            node = None
    return ".".join(shown), line


def _key_line(node: CommentedMap, key: str, fallback: int) -> int:
    """The key's line; keys added by --set have none, so the section's line stands."""
    try:
        return int(node.lc.key(key)[0]) + 1
    except (KeyError, TypeError):
        return fallback


def _is_union_tag(node: CommentedMap, key: str) -> bool:
    return any(node.get(tag) == key for tag in ("kind", "profile"))


def dump_spec(spec: ExperimentSpec) -> str:
    """The resolved spec, every default filled in, as YAML in the spec's section order."""
    buffer = io.StringIO()
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.dump(spec.model_dump(mode="json"), buffer)
    return buffer.getvalue()
