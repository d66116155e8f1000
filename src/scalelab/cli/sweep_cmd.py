"""`scalelab sweep` and `scalelab capacity`: many runs answering one research question."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scalelab.cli.common import PlatformOption, SetOption, console, handle_errors, with_platform

SpecArg = Annotated[Path, typer.Argument(help="Experiment spec (YAML).")]
VaryOption = Annotated[
    list[str] | None,
    typer.Option(
        "--vary",
        "-v",
        help="A spec field and its values: key.path=v1,v2,... or key.path=a..b (repeatable; "
        "adds to the spec's `sweep.vary`).",
    ),
]


@handle_errors
def sweep(
    spec: SpecArg,
    vary: VaryOption = None,
    repetitions: Annotated[
        int | None, typer.Option("--repetitions", "-r", min=1, max=100, help="Runs per cell.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Seed of the random run order.")
    ] = None,
    set_: SetOption = None,
    platform: PlatformOption = None,
) -> None:
    """Run every combination of the varied fields, resumably; write sweep.json, sweep.parquet
    and report.html in the sweep's directory."""
    from scalelab.sweep.execute import disagreements, open_state, run_cells
    from scalelab.sweep.plan import plan_sweep
    from scalelab.sweep.report import write_report

    plan = plan_sweep(spec, with_platform(set_, platform), vary or [], repetitions, seed)
    cells = plan.cells()
    configs = len({c.config for c in cells})
    console.print(
        f"sweep {plan.id}: {configs} configurations × {plan.repetitions} repetitions = "
        f"{len(cells)} runs, order seed {plan.seed}\n  → {plan.dir}"
    )
    state = open_state(plan)
    outcome = run_cells(plan, state, cells, console)
    report = write_report(plan.dir)
    console.print(
        f"sweep {plan.id} {outcome.status}: {outcome.ran} run, {outcome.skipped} skipped\n"
        f"  table  {plan.dir / 'sweep.parquet'}\n  report {report}"
    )
    for line in disagreements(plan.dir):
        console.print(f"[yellow]repetitions disagree[/yellow] (outside the 95 % interval) {line}")
    failed = [k for k, e in state.runs.items() if e.get("status") not in ("succeeded",)]
    if outcome.status == "interrupted":
        raise typer.Exit(130)
    if failed:
        console.print(f"[red]{len(failed)} runs did not succeed[/red]: {', '.join(failed)}")
        raise typer.Exit(1)


LevelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--vary",
        "-v",
        help="The one field whose levels get a search each: key.path=v1,v2,... or a..b "
        "(e.g. workload.workers=1..4).",
    ),
]
SloOption = Annotated[
    list[str] | None,
    typer.Option(
        "--slo",
        help="An SLO for every probe, e.g. latency_p99=200ms (repeatable; = --set slo.KEY=VALUE).",
    ),
]


@handle_errors
def capacity(
    spec: SpecArg,
    vary: LevelOption = None,
    slo: SloOption = None,
    resolution: Annotated[
        float, typer.Option(min=0.001, help="Stop when the search interval is this narrow (msg/s).")
    ] = 1.0,
    max_rate: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Upper bound (msg/s); default: the measured bare inference "
            "rate × min(workers, cores ÷ threads).",
        ),
    ] = None,
    min_rate: Annotated[
        float,
        typer.Option(
            min=0.0, help="A rate expected to be sustained, probed if no search probe is (msg/s)."
        ),
    ] = 0.0,
    tolerance: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="completed ≥ (1 − tolerance) × offered.")
    ] = 0.05,
    demand: Annotated[
        list[float] | None, typer.Option(help="Also say the fewest workers for this rate.")
    ] = None,
    knee: Annotated[
        bool,
        typer.Option(
            "--knee",
            help="Per level, first one run whose load climbs in --knee-steps equal steps to the "
            "upper bound; the last step that kept up and the first saturated one bound the "
            "search (fewer probes). The run is kept and reused like the probes.",
        ),
    ] = False,
    knee_steps: Annotated[
        int, typer.Option(min=2, max=24, help="Steps of the --knee run.")
    ] = 8,  # knee.DEFAULT_STEPS
    knee_step: Annotated[
        float,
        typer.Option(
            min=10.0,
            help="Seconds each step of the --knee run is judged (at least 10, so a step holds "
            "enough messages to tell saturated; the warmup comes on top).",
        ),
    ] = 15.0,  # knee.DEFAULT_STEP_S, knee.MIN_STEP_S
    set_: SetOption = None,
    platform: PlatformOption = None,
) -> None:
    """Find, per level of one varied field (e.g. --vary workload.workers=1..4), the highest
    constant rate that is sustained (SLO met, lag steady, completed ≈ offered, nothing lost).
    With --knee, one step-load run per level bounds each search first."""
    from scalelab.sweep.capacity_cli import run_capacity_command
    from scalelab.sweep.knee import KneeSettings

    overrides = [*with_platform(set_, platform), *(f"slo.{item}" for item in slo or [])]
    code = run_capacity_command(
        spec,
        overrides,
        vary or [],
        resolution,
        max_rate,
        min_rate,
        tolerance,
        demand or [],
        console,
        KneeSettings(knee_steps, knee_step) if knee else None,
    )
    if code:
        raise typer.Exit(code)
