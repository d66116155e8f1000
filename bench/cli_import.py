"""How long `scalelab --help` takes, against importing every subcommand (the old eager CLI).

Each repetition starts a fresh interpreter (the installed `scalelab` entry
point) and times it to exit; the reference is a fresh interpreter that imports
`scalelab.cli.main` and then every subcommand module, which is what the CLI
paid before subcommands were loaded lazily. A bare `python -c pass` is timed
too, so the interpreter's own start-up shows. Each case reports wall time and
the CPU time (user + system) of the child: on a shared machine the wall time
includes waiting for a core, the CPU time does not, so the verdict uses the
CPU time when the machine is busy (load average above its cores) and the wall
time otherwise. Then `python -X importtime` of `--help` names the five slowest
imports.

Goal: median `scalelab --help` under 0.5 s.
Run: ``.venv/bin/python bench/cli_import.py [--repeat 9]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.5
SCALELAB = str(Path(sys.executable).parent / "scalelab")
EAGER = (
    "import importlib, scalelab.cli.main as m\n"
    "for lazy in m.COMMANDS.values(): importlib.import_module(lazy.module)"
)


def timed(command: list[str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each run of `command`."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def slowest_imports(count: int = 5) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", SCALELAB, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "scalelab --help": [SCALELAB, "--help"],
        "import every subcommand": [sys.executable, "-c", EAGER],
    }
    medians, cpu = {}, {}
    print(f"{'case':<26}{'median s':>10}{'min s':>9}{'max s':>9}{'median CPU s':>14}")
    for name, command in cases.items():
        times, cpus = timed(command, args.repeat)
        medians[name], cpu[name] = statistics.median(times), statistics.median(cpus)
        print(
            f"{name:<26}{medians[name]:>10.3f}{min(times):>9.3f}{max(times):>9.3f}"
            f"{cpu[name]:>14.3f}"
        )
    ratio = medians["scalelab --help"] / medians["import every subcommand"]
    print(f"--help / eager import: {ratio:.2f} (wall)")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    busy = load > cores
    print(f"load average {load:.1f} on {cores} cores: judged on {'CPU' if busy else 'wall'} time")
    print("slowest imports of `scalelab --help` (cumulative µs):")
    for micros, module in slowest_imports():
        print(f"  {micros:>9}  {module}")
    median = (cpu if busy else medians)["scalelab --help"]
    ok = median < GOAL_S
    print(f"VERDICT: {'PASS' if ok else 'FAIL'} (median {median:.3f} s, goal < {GOAL_S} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
