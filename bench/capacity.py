"""Capacity search: capacity found ÷ bare ONNX Runtime throughput, and search time vs a grid.

In one command:

1. bare ONNX Runtime throughput of the demo YOLOv8n with the quickstart's
   worker settings (1 thread, batch 1, 640×640), ``--bare-seconds``
   (``scalelab.sweep.bare``, the same measurement the search uses as its
   upper bound: per worker × min(workers, cores ÷ threads));
2. ``scalelab capacity examples/quickstart.yaml --vary workload.workers=1,2``
   at ``--resolution`` msg/s (the library call the CLI makes), each probe a
   real run of ``--duration`` (warmup 5 s), SLO p99 ≤ 1 s;
3. bare ONNX Runtime again; the reference is the mean of before and after.

Printed per worker count: the capacity, capacity ÷ bare rate of one worker,
capacity ÷ the bound used, probe runs, the search's wall time, and the
wall time an exhaustive grid at the same resolution would need, ESTIMATED
as (grid points from the resolution up to the bound) × (mean wall time of
this search's probe runs): running that grid is what the search avoids.

Run: ``.venv/bin/python bench/capacity.py [--workers 1 2] [--resolution 1]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
from rich.console import Console

from _common import ROOT, isolated, machine, table
from scalelab.spec.loader import load_spec
from scalelab.spec.models import YoloWorkload
from scalelab.sweep import bare
from scalelab.sweep.capacity_cli import run_capacity_command
from scalelab.sweep.search import grid_points

QUICKSTART = ROOT / "examples" / "quickstart.yaml"


def probe_overrides(duration: str) -> list[str]:
    return [
        f"load.duration={duration}",
        "load.warmup=5s",
        "slo.latency_p99=1s",
        "slo.min_load_duration=15s",
        "slo.min_samples=50",
        "slo.max_foreign_cpu=1",  # a shared machine: judged on the load, noted in each verdict
        "workload.drain_timeout=30s",
    ]


def bare_rate(seconds: float) -> float:
    spec = load_spec(QUICKSTART)
    assert isinstance(spec.workload, YoloWorkload)
    return bare.measure(spec.workload, spec.base_dir, seconds).per_worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--resolution", type=float, default=1.0, help="msg/s")
    parser.add_argument("--duration", default="25s", help="load per probe, warmup included")
    parser.add_argument("--bare-seconds", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the runs and the sweep")
    args = parser.parse_args(argv)
    print(machine(), flush=True)
    with isolated(keep=args.keep) as dirs:
        before = bare_rate(args.bare_seconds)
        print(f"bare ONNX Runtime before: {before:.2f} img/s (1 thread, batch 1)", flush=True)
        vary = ["workload.workers=" + ",".join(str(w) for w in args.workers)]
        start = time.monotonic()
        code = run_capacity_command(
            QUICKSTART,
            probe_overrides(args.duration),
            vary,
            args.resolution,
            None,
            0.0,
            0.05,
            [],
            Console(),
        )
        wall = time.monotonic() - start
        after = bare_rate(args.bare_seconds)
        print(f"bare ONNX Runtime after: {after:.2f} img/s; exit code {code}", flush=True)
        if code == 130:
            print("interrupted: no figures (run the same command with --keep to resume)")
            return
        report(Path(dirs["SCALELAB_RUNS"]) / "sweeps", (before + after) / 2, args.resolution, wall)


def report(sweeps: Path, bare_1: float, resolution: float, wall: float) -> None:
    (sweep_dir,) = sweeps.glob("*-capacity-*")
    state = json.loads((sweep_dir / "sweep.json").read_text())
    capacity = pd.read_parquet(sweep_dir / "capacity.parquet")
    bounds = {float(k): v for k, v in state["capacity"]["upper_bounds"].items()}
    probes = [e for e in state["runs"].values() if e.get("seconds")]
    mean_probe = sum(e["seconds"] for e in probes) / max(1, len(probes))
    rows = []
    for row in capacity.itertuples():
        bound = bounds[row.workers]
        level = [e for e in probes if float(e["params"]["workload.workers"]) == row.workers]
        search_s = sum(e["seconds"] for e in level)
        grid = grid_points(bound, resolution)
        cap = row.capacity if pd.notna(row.capacity) else float("nan")
        rows.append(
            [
                int(row.workers),
                bound,
                cap,
                row.first_failing,
                cap / bare_1,
                cap / bound,
                int(row.probes),
                search_s,
                grid,
                grid * mean_probe,
                grid * mean_probe / search_s,
            ]
        )
    print(
        table(
            [
                "workers",
                "bound msg/s",
                "capacity",
                "lowest failing",
                "cap/bare(1)",
                "cap/bound",
                "probes",
                "search s",
                "grid points",
                "grid s (est.)",
                "grid/search",
            ],
            rows,
        )
    )
    print(f"bare ONNX Runtime (mean of before/after): {bare_1:.2f} img/s per worker")
    print(
        f"mean probe run: {mean_probe:.1f} s over {len(probes)} probes; search total {wall:.0f} s"
    )
    print("grid s (est.) = grid points × mean probe run (the grid was not run)")


if __name__ == "__main__":
    main()
