"""`scalelab render`: write every manifest a run would apply, for review."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scalelab.cli.common import SetOption, console, handle_errors
from scalelab.errors import ConfigError
from scalelab.spec.loader import load_spec

PLATFORMS = ("kubernetes",)


@handle_errors
def render(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    platform: Annotated[
        str, typer.Option("--platform", help="Platform to render for: kubernetes.")
    ] = "kubernetes",
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for the manifests (one per file).")
    ] = Path("manifests"),
    set_: SetOption = None,
) -> None:
    """Write the manifests a run applies (validated offline), without touching a cluster."""
    if platform not in PLATFORMS:
        raise ConfigError(f"--platform {platform!r}: only {', '.join(PLATFORMS)} renders manifests")
    parsed = load_spec(spec, set_ or [])
    parsed.platform.kind = "kubernetes"
    from scalelab.platform.kubernetes.render import render as render_manifests

    written = render_manifests(parsed, output)
    for path in written:
        console.print(f"  {escape(path.name)}", highlight=False)
    console.print(f"[green]rendered[/green] {len(written)} manifests into {escape(str(output))}")
