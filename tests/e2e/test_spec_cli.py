"""Hostile specs through the real CLI: exit 2 with `where: field: message`, no traceback.

`scalelab run` with such a spec must start nothing: no run directory, no
process, no pid file.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from .cli import REPO, pid_dir, runs, scalelab

pytestmark = pytest.mark.e2e
QUICKSTART = REPO / "examples" / "quickstart.yaml"
LAUGHS = (
    "["
    + ", ".join(
        ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    )
    + "]"
)

SET_CASES = {
    "parser-error": ("workload.workers=[1, 2", "--set: workload.workers: not valid YAML"),
    "python-tag": (
        "load.rate=!!python/object:os.system ls",
        "--set: load.rate: not valid YAML: could not determine a constructor",
    ),
    "recursive-alias": ("description=&a [*a]", "--set: description.0: refers to itself"),
    "billion-laughs": (f"description={LAUGHS}", "--set: description: expands to more than"),
    "infinite-rate": ("load.rate=.inf", "--set: load.rate: Input should be a finite number"),
}


def refused(command: str, spec: Path, *overrides: str) -> str:
    """Run the command; assert exit 2 without a traceback; return what it printed."""
    args = [command, str(spec)]
    for item in overrides:
        args += ["--set", item]
    result = scalelab(*args, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    # rich may wrap a long line; a problem with the whole file has no field path
    return " ".join(output.split()).replace(": : ", ": ")


def started_nothing(before: list[Path]) -> bool:
    pids = list(pid_dir().glob("*.json")) if pid_dir().is_dir() else []
    return runs() == before and pids == []


@pytest.mark.parametrize("case", sorted(SET_CASES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_hostile_set_exits_2_and_starts_nothing(command: str, case: str) -> None:
    override, expected = SET_CASES[case]
    before = runs()
    output = refused(command, QUICKSTART, override)
    assert expected in output
    assert started_nothing(before)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_non_utf8_spec_exits_2(tmp_path: Path, command: str) -> None:
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes(QUICKSTART.read_bytes().replace(b"below capacity.", b"caf\xe9."))
    before = runs()
    output = refused(command, spec)
    assert f"{spec}:5: not UTF-8 text: byte 0xe9" in output
    assert started_nothing(before)


def test_billion_laughs_file_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "laughs.yaml"
    spec.write_text(QUICKSTART.read_text() + f"\nfaults: {LAUGHS}\n")
    output = refused("validate", spec)
    assert "faults: expands to more than 100,000 values" in output


def test_oversized_spec_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text(QUICKSTART.read_text() + "\n#" + "x" * 300_000 + "\n")
    output = refused("validate", spec)
    assert f"{spec}: spec is {spec.stat().st_size:,} bytes" in output


def test_run_with_a_directory_of_non_images_starts_nothing(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(20):
        (frames / f"{i:03d}.jpg").write_text(f"this is text, not frame {i}")
    spec = tmp_path / "spec.yaml"
    text = QUICKSTART.read_text().replace("kind: synthetic", "kind: directory\n  path: frames")
    spec.write_text(text.replace("  width: 640\n  height: 480\n", ""))
    before = runs()
    for command in ("validate", "run"):
        output = refused(command, spec)
        assert "source.path: not an image OpenCV can read" in output
        assert str(frames / "000.jpg") in output
    assert started_nothing(before)


def test_schema_command_validates_every_example() -> None:
    result = scalelab("schema", timeout=120)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    validator = jsonschema.Draft202012Validator(schema)
    for example in sorted((REPO / "examples").glob("*.yaml")):
        document = YAML(typ="safe").load(example.read_text())
        assert [e.message for e in validator.iter_errors(document)] == [], example.name
    document = YAML(typ="safe").load(QUICKSTART.read_text())
    document["workload"]["workers"] = "two"
    assert not validator.is_valid(document)
