"""Run one experiment the way `scalelab run` does, for a Flink spec, in its own process.

The runner resolves a YOLO model before anything starts; a Flink workload has none,
so until the runner skips that step for `kind: flink` the tests drive the same pieces
(session, stack, experiment, export, analysis) here. Prints the run directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from scalelab.run.experiment import Experiment
from scalelab.run.runner import analyse, export_metrics
from scalelab.run.session import Interrupts, RunSession
from scalelab.spec.loader import load_spec


def main() -> None:
    path = Path(sys.argv[1])
    spec = load_spec(path, sys.argv[2:])
    console = Console(stderr=True)
    with Interrupts() as interrupts:
        session = RunSession(spec, path, interrupts=interrupts)
        try:
            with session:
                endpoints = session.start_stack()
                try:
                    Experiment(session, endpoints, "", console).execute()
                finally:
                    export_metrics(session, console)
        except (KeyboardInterrupt, Exception):  # noqa: BLE001 - recorded in run.json
            pass
        analyse(session)
    print(session.dir)


if __name__ == "__main__":
    main()
