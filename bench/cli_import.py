"""How long `scalelab --help` takes, against importing every subcommand (the old eager CLI).

Each repetition starts a fresh interpreter (the installed `scalelab` entry
point) and times it to exit; the reference is a fresh interpreter that imports
`scalelab.cli.main` and then every subcommand module, which is what the CLI
paid before subcommands were loaded lazily. A bare `python -c pass` is timed
too, so the interpreter's own start-up shows. Then `python -X importtime` of
`--help` names the five slowest imports.

Goal: median `scalelab --help` under 0.5 s.
Run: ``.venv/bin/python bench/cli_import.py [--repeat 9]``.
"""

from __future__ import annotations

import argparse
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


def wall(command: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


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
    medians = {}
    print(f"{'case':<26}{'median s':>10}{'min s':>9}{'max s':>9}")
    for name, command in cases.items():
        times = wall(command, args.repeat)
        medians[name] = statistics.median(times)
        print(f"{name:<26}{medians[name]:>10.3f}{min(times):>9.3f}{max(times):>9.3f}")
    ratio = medians["scalelab --help"] / medians["import every subcommand"]
    print(f"--help / eager import: {ratio:.2f}")
    print("slowest imports of `scalelab --help` (cumulative µs):")
    for micros, module in slowest_imports():
        print(f"  {micros:>9}  {module}")
    median = medians["scalelab --help"]
    ok = median < GOAL_S
    print(f"VERDICT: {'PASS' if ok else 'FAIL'} (median {median:.3f} s, goal < {GOAL_S} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
