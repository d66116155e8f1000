"""The `scalelab` command: one short module per subcommand, logic in the library.

Subcommands are imported when they run, not when the command starts: their
modules pull in pandas, matplotlib, the spec models and the platforms, which
cost seconds on a busy machine. `scalelab --help` lists them from the table
below (the short help is the first line of each command's docstring, checked
by a test) without importing any. `bench/cli_import.py` measures it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path
from typing import Any, NamedTuple

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup


class Lazy(NamedTuple):
    module: str
    attr: str
    help: str = ""
    """A sub-app's help; a command's is its docstring's first line, read without importing."""

    @property
    def group(self) -> bool:
        return self.attr == "app"

    def short_help(self) -> str:
        return self.help or docstring_line(self.module, self.attr)


COMMANDS: dict[str, Lazy] = {
    "validate": Lazy("scalelab.cli.spec_cmds", "validate"),
    "schema": Lazy("scalelab.cli.spec_cmds", "schema"),
    "run": Lazy("scalelab.cli.run_cmd", "run"),
    "up": Lazy("scalelab.cli.stack_cmds", "up"),
    "down": Lazy("scalelab.cli.stack_cmds", "down"),
    "status": Lazy("scalelab.cli.stack_cmds", "status"),
    "reset": Lazy("scalelab.cli.stack_cmds", "reset"),
    "ls": Lazy("scalelab.cli.runs_cmds", "ls"),
    "rm": Lazy("scalelab.cli.runs_cmds", "rm"),
    "export": Lazy("scalelab.cli.export_cmd", "export"),
    "report": Lazy("scalelab.cli.report_cmd", "report"),
    "compare": Lazy("scalelab.cli.compare_cmd", "compare"),
    "scorecard": Lazy("scalelab.cli.scorecard_cmd", "scorecard"),
    "render": Lazy("scalelab.cli.render_cmd", "render"),
    "sweep": Lazy("scalelab.cli.sweep_cmd", "sweep"),
    "capacity": Lazy("scalelab.cli.sweep_cmd", "capacity"),
    "cluster": Lazy(
        "scalelab.cli.cluster_cmd",
        "app",
        "Prepare a Kubernetes cluster (Strimzi, monitoring) and reach it.",
    ),
    "model": Lazy("scalelab.cli.model", "app", "Build and inspect detection models."),
}
"""Name → where the command lives (a function, or a Typer sub-app named `app`)."""


class LazyGroup(TyperGroup):
    """A Typer group whose subcommands are imported on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._loaded: dict[str, click.Command] = {}
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = COMMANDS.get(cmd_name)
        if lazy is None:
            return None
        if self._listing:
            text = lazy.short_help()
            return TyperCommand(cmd_name, help=text, short_help=text)
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load(cmd_name, lazy)
        return self._loaded[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing of commands uses the table's short help: no subcommand is imported."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def docstring_line(module: str, function: str) -> str:
    """The first paragraph of a function's docstring, from its module's source (no import)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    for node in ast.parse(Path(spec.origin).read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            paragraph = (ast.get_docstring(node) or "").split("\n\n")[0]
            return " ".join(paragraph.split())
    return ""


def load(name: str, lazy: Lazy) -> click.Command:
    """Import a subcommand's module and turn its function (or Typer app) into a click command."""
    target = getattr(importlib.import_module(lazy.module), lazy.attr)
    if lazy.group:
        group = typer.main.get_group(target)
        group.name = name
        group.help = group.help or lazy.help
        return group
    single = typer.Typer()
    single.command(name=name)(target)
    return typer.main.get_command(single)


app = typer.Typer(
    name="scalelab",
    cls=LazyGroup,
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main() -> None:
    """Controlled, reproducible performance-and-energy experiments.

    Runs live under SCALELAB_RUNS (default: runs/ at the project root, found upward
    from the current directory); a run id may be `latest`, a full id, a unique prefix
    or the experiment's name (its newest run).
    """
