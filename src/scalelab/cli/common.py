"""What every subcommand shares: the console, and turning ScalelabErrors into exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from scalelab.errors import MissingDependencyError, ScalelabError, SpecError

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a spec field: key.path=value (repeatable)."),
]


PlatformOption = Annotated[
    str | None,
    typer.Option(
        "--platform", help="Run on this platform (local | kubernetes), whatever the spec says."
    ),
]


def with_platform(overrides: list[str] | None, platform: str | None) -> list[str]:
    """`--platform X` is `--set platform.kind=X`, checked like any other field."""
    return [*(overrides or []), *([f"platform.kind={platform}"] if platform else [])]


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print a ScalelabError as the user should see it and exit with its code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SpecError as error:
            for problem in error.problems:
                err_console.print(
                    f"[red]error:[/red] {escape(str(problem))}", highlight=False, soft_wrap=True
                )
            raise typer.Exit(error.exit_code) from error
        except MissingDependencyError as error:
            err_console.print(
                f"[red]error:[/red] {escape(error.what)} is missing.\n"
                f"  fix: {escape(error.install_hint)}"
            )
            raise typer.Exit(error.exit_code) from error
        except ScalelabError as error:
            err_console.print(
                f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(error.exit_code) from error

    return wrapper
