"""`python -m scalelab.live [RUN_DIR] [--port N]`: serve the live page for one run until stopped.

For a stack left running by `scalelab up` (its run directory: the page then
follows the newest run that uses the stack's Prometheus), or a run of another
terminal. Without RUN_DIR: the newest run under the runs directory. The
page's address is printed and written to RUN_DIR/live.json.
`--metrics-port` is the same as `--port`, so the local platform can start it
as a component (it hands every component a free port under that name).
SIGTERM and Ctrl-C stop it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from scalelab import paths
from scalelab.live.follow import RunState
from scalelab.live.server import start_dashboard

LIVE_FILE = "live.json"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    run_dir = args.run_dir or _newest()
    if run_dir is None or not (run_dir / "run.json").is_file():
        print(f"no run directory with a run.json: {run_dir or paths.runs_dir()}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dashboard = start_dashboard(_announce, run_dir=run_dir.resolve(), port=args.port)
    print(f"live dashboard {dashboard.url}  (run {run_dir.name})", flush=True)
    _write_url(run_dir, dashboard.url)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        dashboard.stop()
    return 0


def _write_url(run_dir: Path, url: str) -> None:
    """live.json in the run directory: how `scalelab up` learns the page's address."""
    tmp = run_dir / f"{LIVE_FILE}.tmp"
    try:
        tmp.write_text(json.dumps({"url": url}))
        tmp.replace(run_dir / LIVE_FILE)
    except OSError:
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scalelab.live", description=__doc__)
    parser.add_argument("run_dir", nargs="?", type=Path, help="the run directory to show")
    parser.add_argument("--port", "--metrics-port", type=int, default=0, help="0: a free one")
    return parser


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
