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
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from scalelab.errors import SpecError, SpecProblem
from scalelab.spec.checks import run_checks
from scalelab.spec.models import ExperimentSpec

OVERRIDE_SOURCE = "--set"

MAX_SPEC_BYTES = 256 * 1024
"""Largest spec file (or `--set` value) read. A real spec is a few kB; the YAML parser
costs about 15 s of CPU per MB of dense YAML, so this bound keeps any spec that is read
to a few seconds."""

MAX_VALUES = 100_000
"""Most values (mappings, lists, scalars) a spec may hold once its YAML aliases are expanded."""

MAX_TEXT = 4 * MAX_SPEC_BYTES
"""Most characters of text a spec may hold once its YAML aliases are expanded."""

MAX_DEPTH = 32
"""Deepest nesting of a spec; the real ones nest four levels."""


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Parse, override, validate and check a spec file; raise SpecError listing every problem.

    The input is untrusted: bytes that are not UTF-8, YAML that does not parse,
    Python tags, recursive aliases and alias bombs (billion laughs) all end as
    a SpecError naming the file (or `--set`), the line and the field, before
    anything expands them.
    """
    path = Path(path)
    tree = _read_yaml(path)
    overridden = apply_overrides(tree, overrides)
    _refuse_expansion(tree, path, overridden)
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
    text = _read_text(path)
    try:
        tree = _parse_yaml(text, "rt")
    except _YamlFailure as failure:
        raise SpecError([SpecProblem("", failure.message, str(path), failure.line)]) from failure
    if not isinstance(tree, CommentedMap):
        raise SpecError([SpecProblem("", "a spec must be a YAML mapping", str(path), 1)])
    return tree


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; too large or undecodable is a problem at its line."""
    if not path.is_file():
        raise SpecError([SpecProblem("", f"spec file not found: {path}")])
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        message = f"spec is {size:,} bytes, more than the {MAX_SPEC_BYTES:,} bytes allowed"
        raise SpecError([SpecProblem("", message, str(path))])
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SpecError([SpecProblem("", f"cannot read: {err.strerror}", str(path))]) from err
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        byte = data[err.start : err.start + 1].hex()
        message = f"not UTF-8 text: byte 0x{byte} at column {column} (save the file as UTF-8)"
        raise SpecError([SpecProblem("", message, str(path), line)]) from err


class _YamlFailure(Exception):
    """YAML that does not load: the reason and, where the parser knows it, the 1-based line."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


def _parse_yaml(text: str, typ: str) -> Any:
    """Load YAML without ever running Python tags (rt and safe construct plain data only)."""
    try:
        return YAML(typ=typ).load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        raise _YamlFailure(f"not valid YAML: {err.problem or err.context}", line) from err
    except ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise _YamlFailure(f"not valid YAML: {err.reason} (#x{code:04x})", line) from err
    except YAMLError as err:
        raise _YamlFailure(f"not valid YAML: {err}") from err
    except RecursionError as err:
        raise _YamlFailure(f"not valid YAML: nested deeper than {MAX_DEPTH} levels") from err
    except TypeError as err:  # ruamel's round-trip mappings cannot hold a list as a key
        raise _YamlFailure(f"not valid YAML: a key must be a plain value ({err})") from err
    except (ValueError, OverflowError) as err:  # e.g. an integer of more than 4300 digits
        reason = str(err).split(";")[0]  # not Python's advice to raise its own limit
        raise _YamlFailure(f"not valid YAML: {reason}") from err


def apply_overrides(tree: CommentedMap, overrides: Iterable[str]) -> set[str]:
    """Apply ``key.path=value`` overrides in place; values are parsed as YAML scalars."""
    applied = set()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError([SpecProblem(item, "--set expects key.path=value", OVERRIDE_SOURCE)])
        _set_path(tree, key.split("."), _override_value(key, raw), item)
        applied.add(key)
    return applied


def _override_value(key: str, raw: str) -> Any:
    """The value of one `--set key=raw`, parsed as YAML like the file itself."""
    if len(raw) > MAX_SPEC_BYTES:
        message = f"value is {len(raw):,} characters, more than the {MAX_SPEC_BYTES:,} allowed"
        raise SpecError([SpecProblem(key, message, OVERRIDE_SOURCE)])
    if not raw:
        return ""
    try:
        return _parse_yaml(raw, "safe")
    except _YamlFailure as failure:
        shown = raw if len(raw) <= 80 else raw[:77] + "..."
        raise SpecError(
            [SpecProblem(key, failure.message, OVERRIDE_SOURCE, value=shown)]
        ) from failure


def _set_path(tree: CommentedMap, keys: list[str], value: Any, item: str) -> None:
    """Set the value at `keys`, creating missing sections; list items go by their index."""
    node: Any = tree
    for depth, key in enumerate(keys):
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list) and not (
            key.isascii() and key.isdigit() and int(key) < len(node)
        ):
            raise _cannot_set(where, "no such list item", item)
        if depth == len(keys) - 1:
            node[int(key) if isinstance(node, list) else key] = value
            return
        child = node[int(key)] if isinstance(node, list) else node.get(key)
        if child is None and isinstance(node, dict):
            child = node[key] = CommentedMap()
        if not isinstance(child, dict | list):
            raise _cannot_set(where, "is not a section", item)
        node = child


def _cannot_set(where: str, reason: str, item: str) -> SpecError:
    return SpecError([SpecProblem(where, f"{reason}, cannot apply {item}", OVERRIDE_SOURCE)])


class _Expansion:
    """Walks the parsed tree as pydantic would see it, aliases expanded, within budgets.

    A YAML alias is a reference to an earlier node: nine nested lists of nine
    aliases are a few hundred bytes that expand to 10^9 values (billion
    laughs), and an alias inside its own anchor expands forever. The walk
    counts what expansion would produce and stops at the first budget it
    exceeds, so the refusal costs at most MAX_VALUES steps.
    """

    def __init__(self) -> None:
        self.values = 0
        self.text = 0
        self.open: set[int] = set()

    def visit(self, node: Any, keys: list[str]) -> None:
        self._count(node, keys)
        if not isinstance(node, dict | list | tuple | set):
            return
        if id(node) in self.open:
            raise _Refused(keys, "refers to itself (a recursive YAML alias)")
        if len(keys) >= MAX_DEPTH:
            raise _Refused(keys, f"nested deeper than {MAX_DEPTH} levels")
        self.open.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            self.visit(key, keys)  # a complex key (`? [*a, *a]`) expands like a value
            self.visit(child, [*keys, str(key)])
        self.open.discard(id(node))

    def _count(self, node: Any, keys: list[str]) -> None:
        self.values += 1
        if isinstance(node, str):
            self.text += len(node)
        if self.values > MAX_VALUES:
            message = f"expands to more than {MAX_VALUES:,} values (YAML aliases?); refused"
            raise _Refused(keys[:1], message)
        if self.text > MAX_TEXT:
            message = f"expands to more than {MAX_TEXT:,} characters (YAML aliases?); refused"
            raise _Refused(keys[:1], message)


class _Refused(Exception):
    def __init__(self, keys: list[str], message: str):
        super().__init__(message)
        self.keys = keys
        self.message = message


def _refuse_expansion(tree: CommentedMap, path: Path, overridden: set[str]) -> None:
    """Refuse a spec whose aliases expand too far, or forever, before anything expands it."""
    try:
        _Expansion().visit(tree, [])
    except _Refused as refused:
        problem = SpecProblem(".".join(refused.keys), refused.message)
        raise SpecError([_locate(problem, tree, path, overridden)]) from refused


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
    """A problem at or under a `--set` key is blamed on `--set`, not on the file's line."""
    if any(problem.path == key or problem.path.startswith(key + ".") for key in overridden):
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
        elif (
            isinstance(node, CommentedSeq)
            and key.isascii()
            and key.isdigit()
            and int(key) < len(node)
        ):
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
    """A union's tag in an error location; a workload without `kind` is tagged 'yolo'."""
    implied = key == "yolo" and "kind" not in node
    return implied or any(node.get(tag) == key for tag in ("kind", "profile"))


def dump_spec(spec: ExperimentSpec) -> str:
    """The resolved spec, every default filled in, as YAML in the spec's section order."""
    buffer = io.StringIO()
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.dump(spec.model_dump(mode="json"), buffer)
    return buffer.getvalue()
