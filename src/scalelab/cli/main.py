"""The `scalelab` command: one short module per subcommand, logic in the library."""

from __future__ import annotations

import typer

from scalelab.cli import (
    cluster_cmd,
    compare_cmd,
    export_cmd,
    model,
    render_cmd,
    report_cmd,
    run_cmd,
    runs_cmds,
    spec_cmds,
    stack_cmds,
    sweep_cmd,
)

app = typer.Typer(
    name="scalelab",
    help="Controlled, reproducible performance-and-energy experiments.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command()(spec_cmds.validate)
app.command()(spec_cmds.schema)
app.command()(run_cmd.run)
app.command()(stack_cmds.up)
app.command()(stack_cmds.down)
app.command()(stack_cmds.status)
app.command()(stack_cmds.reset)
app.command()(runs_cmds.ls)
app.command()(export_cmd.export)
app.command()(report_cmd.report)
app.command()(compare_cmd.compare)
app.command()(render_cmd.render)
app.command()(sweep_cmd.sweep)
app.command()(sweep_cmd.capacity)
app.add_typer(
    cluster_cmd.app,
    name="cluster",
    help="Prepare a Kubernetes cluster (Strimzi, monitoring) and reach it.",
)
app.add_typer(model.app, name="model", help="Build and inspect detection models.")
