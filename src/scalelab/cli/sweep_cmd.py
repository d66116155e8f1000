"""`scalelab sweep` and `scalelab capacity`: many runs answering one research question."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SpecArg = Annotated[Path, typer.Argument(help="Experiment spec (YAML).")]


def sweep(spec: SpecArg) -> None:
    """Run every combination of the varied parameters (not implemented yet)."""
    typer.echo("scalelab sweep: not implemented yet", err=True)
    raise typer.Exit(2)


def capacity(spec: SpecArg) -> None:
    """Find the highest sustainable rate per resource level (not implemented yet)."""
    typer.echo("scalelab capacity: not implemented yet", err=True)
    raise typer.Exit(2)
