"""`python -m scalelab.live [RUN_DIR]`: serve the live page for one run until Ctrl-C.

For a stack left running by `scalelab up` (its run directory), or a run of
another terminal. Without RUN_DIR: the newest run under the runs directory.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from scalelab import paths
from scalelab.live.follow import RunState
from scalelab.live.server import start_dashboard


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0]) if argv else _newest()
    if run_dir is None or not (run_dir / "run.json").is_file():
        print(f"no run directory with a run.json: {run_dir or paths.runs_dir()}", file=sys.stderr)
        return 2
    dashboard = start_dashboard(_announce, run_dir=run_dir.resolve())
    print(f"live dashboard {dashboard.url}  (run {run_dir.name}; Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        dashboard.stop()


def _announce(state: RunState, grafana: Path | None) -> None:
    print(f"Prometheus {state.prometheus}", flush=True)
    if grafana is not None:
        print(f"Grafana dashboard {grafana}", flush=True)


def _newest() -> Path | None:
    runs = paths.runs_dir()
    found = sorted(runs.iterdir()) if runs.is_dir() else []
    return found[-1] if found else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
