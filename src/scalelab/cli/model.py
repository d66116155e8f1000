"""`scalelab model build` and `scalelab model info`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from scalelab import paths
from scalelab.cli.common import console, handle_errors
from scalelab.models.info import ModelInfo, load_model_info
from scalelab.models.registry import BUILDERS, build_model
from scalelab.models.yolov8 import DEFAULT_OPSET

app = typer.Typer(no_args_is_help=True)


@app.command()
@handle_errors
def build(
    name: Annotated[str, typer.Argument(help=f"Architecture: {', '.join(BUILDERS)}.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write it (default: where `run` looks, $SCALELAB_MODELS or "
            "<state dir>/models, as NAME.onnx).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
    imgsz: Annotated[int, typer.Option(help="Nominal input size, in the metadata.")] = 640,
    opset: Annotated[int, typer.Option(help="ONNX operator set.")] = DEFAULT_OPSET,
) -> None:
    """Build a model with the real architecture and random weights (offline, no torch)."""
    target = output or paths.models_dir() / f"{name}.onnx"
    info = build_model(name, target, seed, imgsz, opset)
    console.print(f"[green]built[/green] {escape(str(info.path))}", highlight=False)
    _print_rows(info, ("parameters", "sha256"))


@app.command()
@handle_errors
def info(path: Annotated[Path, typer.Argument(help="Model file (.onnx, or .pt).")]) -> None:
    """Show what a model takes and returns, its classes, size and hash."""
    _print_rows(load_model_info(path))


def _print_rows(info: ModelInfo, only: tuple[str, ...] = ()) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    for label, value in info.rows():
        if not only or label in only:
            table.add_row(f"[bold]{label}[/bold]", escape(value))
    console.print(table, highlight=False)
