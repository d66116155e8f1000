"""`scalelab validate` and `scalelab schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from scalelab.cli.common import SetOption, console, handle_errors
from scalelab.spec.loader import dump_spec, load_spec
from scalelab.spec.models import spec_json_schema


@handle_errors
def validate(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    set_: SetOption = None,
    resolved: Annotated[bool, typer.Option(help="Print the resolved spec.")] = False,
) -> None:
    """Check a spec: types, ranges, unknown keys and cross-field rules."""
    parsed = load_spec(spec, set_ or [])
    if resolved:
        console.print(dump_spec(parsed), highlight=False, markup=False)
    console.print(f"[green]ok[/green] {spec}: experiment '{parsed.name}' is valid")


def schema() -> None:
    """Print the spec's JSON Schema (Draft 2020-12, for editors and validators)."""
    print(json.dumps(spec_json_schema(), indent=2))
