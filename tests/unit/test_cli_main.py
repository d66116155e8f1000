"""The `scalelab` command loads its subcommands lazily: help lists them all, imports none."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from scalelab.cli.main import COMMANDS, app

HEAVY = ("pandas", "matplotlib", "pyarrow", "pydantic", "scalelab.run.runner")


def test_help_lists_every_command_without_importing_the_heavy_libraries() -> None:
    code = (
        "import sys\nsys.argv = ['scalelab', '--help']\n"
        "from scalelab.cli.main import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED []" in done.stdout, done.stdout[-800:]
    for name in COMMANDS:
        assert f"\n  {name} " in done.stdout, name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_loads_and_has_its_help(name: str) -> None:
    group = get_command(app)
    assert isinstance(group, TyperGroup)
    ctx = group.make_context("scalelab", [name, "--help"], resilient_parsing=True)
    command = group.get_command(ctx, name)
    assert command is not None and command.name == name
    assert command.params or getattr(command, "commands", None)
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage: scalelab " + name in " ".join(result.output.split())


def test_an_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(app, ["nosuch"])
    assert result.exit_code == 2
