"""Interrupted and failed runs on a loaded machine: every CLI ends, nothing is left (issue 9).

Issue 9's goal: "running twenty interrupted or failed runs while another stack
loads the machine ends every CLI within 30 s of the teardown, with no process
left and every record closed (aborted/failed with the reason)".

1. A neighbour: ``scalelab run`` of the quickstart in its own state and run
   directories, at load for the whole benchmark (Ctrl-C'ed at the end);
2. ``--count`` runs (default 20), one after another in this benchmark's own
   directories, each ended in turn by one of:

   - ``sigint``: Ctrl-C mid-load;
   - ``sigint2``: two Ctrl-Cs one second apart mid-load (forced teardown);
   - ``sigterm``: SIGTERM mid-load;
   - ``term-in-teardown``: SIGTERM while a short run tears down;
   - ``sigkill``: SIGKILL of the CLI mid-load, then ``scalelab reset``;
   - ``broker-dies``: the broker SIGKILLed mid-load (the run fails);

3. for each: seconds from the end of the teardown (run.json) to the CLI's
   exit; children still alive 30 s after the CLI ended (pids from the pid
   files, read mid-load); pid files left; the record's status (after
   ``reset`` for ``sigkill``) and the reason it gives.

A run passes when its CLI exited at most 30 s after its teardown (``sigkill``:
no teardown, the CLI is gone at once), no child and no pid file is left, and
its record is closed (``aborted`` or ``failed``) with a reason.

Run: ``.venv/bin/python bench/interrupts.py [--count 20] [--no-neighbour] [SPEC]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, isolated, leftovers, machine, stop_pids, table, verdict  # noqa: E402

QUICKSTART = ROOT / "examples" / "quickstart.yaml"
KINDS = ("sigint", "sigint2", "sigterm", "term-in-teardown", "sigkill", "broker-dies")
GOAL_S = 30.0
CLI = [sys.executable, "-m", "scalelab.cli"]


@dataclass
class Outcome:
    kind: str
    exit_code: int | None
    after_teardown_s: float | None
    children_left: int
    pid_files_left: int
    status: str
    reason: str

    @property
    def ok(self) -> bool:
        exited_in_time = self.kind == "sigkill" or (
            self.after_teardown_s is not None and self.after_teardown_s <= GOAL_S
        )
        closed = self.status in ("aborted", "failed") and bool(self.reason)
        return exited_in_time and not self.children_left and not self.pid_files_left and closed


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
    )


def pid_files() -> dict[str, int]:
    folder = Path(os.environ["SCALELAB_HOME"]) / "pids"
    found = {}
    for path in folder.glob("*.json"):
        try:
            found[path.stem] = int(json.loads(path.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_for(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def runs() -> set[Path]:
    root = Path(os.environ["SCALELAB_RUNS"])
    return {p for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()


def read_record(run_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((run_dir / "run.json").read_text()))
    except (OSError, ValueError):
        return {}


def teardown_end(record: dict[str, Any]) -> float | None:
    for phase in record.get("phases", []):
        if phase["name"] == "teardown" and phase.get("end"):
            return datetime.fromisoformat(phase["end"].replace("Z", "+00:00")).timestamp()
    return None


def one_run(kind: str, spec: Path) -> Outcome:
    """Start a run, end it the `kind` way, and check what it left."""
    before = runs()
    duration = "8s" if kind == "term-in-teardown" else "60s"
    stale = set(pid_files().values())  # left by an earlier run that failed to clean up
    proc = cli("run", str(spec), "--set", f"load.duration={duration}", "--set", "load.warmup=2s")
    if not wait_for(lambda: _producer_started(stale) or proc.poll() is not None, 300):
        proc.kill()
    time.sleep(2)
    children = pid_files()
    _interrupt(kind, proc, before, children)
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    exited = time.time()
    wait_for(lambda: not any(alive(p) for p in children.values()), GOAL_S)
    left = sum(alive(pid) for pid in children.values())
    if kind == "sigkill":
        subprocess.run([*CLI, "reset"], capture_output=True, cwd=ROOT, timeout=120)
    new = sorted(runs() - before)
    record = read_record(new[-1]) if new else {}
    end = teardown_end(record)
    errors = record.get("errors") or [{}]
    return Outcome(
        kind=kind,
        exit_code=proc.returncode,
        after_teardown_s=None if end is None or kind == "sigkill" else exited - end,
        children_left=left,
        pid_files_left=len(pid_files()),
        status=str(record.get("status", "none")),
        reason=str(errors[0].get("message", "")).splitlines()[0][:70] if errors[0] else "",
    )


def _producer_started(stale: set[int]) -> bool:
    pid = pid_files().get("producer")
    return pid is not None and pid not in stale and alive(pid)


def _interrupt(
    kind: str, proc: subprocess.Popen[str], before: set[Path], children: dict[str, int]
) -> None:
    if proc.poll() is not None:
        return
    if kind in ("sigint", "sigint2"):
        proc.send_signal(signal.SIGINT)
        if kind == "sigint2":
            time.sleep(1)
            proc.send_signal(signal.SIGINT)
    elif kind == "sigterm":
        proc.send_signal(signal.SIGTERM)
    elif kind == "sigkill":
        proc.kill()
    elif kind == "broker-dies" and "broker" in children:
        os.kill(children["broker"], signal.SIGKILL)
    elif kind == "term-in-teardown" and wait_for(
        lambda: _in_teardown(before) or proc.poll() is not None, 300, 0.02
    ):
        proc.send_signal(signal.SIGTERM)


def _in_teardown(before: set[Path]) -> bool:
    new = sorted(runs() - before)
    phases = read_record(new[-1]).get("phases", []) if new else []
    return bool(phases) and phases[-1]["name"] == "teardown"


def start_neighbour(spec: Path) -> tuple[subprocess.Popen[str], str]:
    """Another stack at load for the whole benchmark, in its own directories."""
    home = tempfile.mkdtemp(prefix="bench-neighbour-")
    env = {"SCALELAB_HOME": f"{home}/state", "SCALELAB_RUNS": f"{home}/runs"}
    proc = cli("run", str(spec), "--set", "load.duration=7200s", env=env)
    if not wait_for(lambda: (Path(home) / "state" / "pids" / "producer.json").exists(), 300):
        print("WARNING: the neighbour's load never started", flush=True)
    return proc, home


def stop_neighbour(proc: subprocess.Popen[str], home: str) -> None:
    """Ctrl-C (twice if it lingers), then check it left nothing, and remove its directories."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    left = leftovers([home])
    if left:
        print(f"WARNING: the neighbour left processes, stopping them: {left}", flush=True)
        stop_pids([pid for pid, _ in left])
    shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(QUICKSTART))
    parser.add_argument("--count", type=int, default=20, help="interrupted/failed runs")
    parser.add_argument("--no-neighbour", action="store_true", help="no second stack at load")
    args = parser.parse_args()
    print(machine(), flush=True)
    outcomes: list[Outcome] = []
    with isolated():
        neighbour = None if args.no_neighbour else start_neighbour(Path(args.spec))
        try:
            for index in range(args.count):
                kind = KINDS[index % len(KINDS)]
                outcome = one_run(kind, Path(args.spec))
                outcomes.append(outcome)
                print(f"{index + 1}/{args.count} {kind}: {outcome}", flush=True)
        finally:
            if neighbour is not None:
                stop_neighbour(*neighbour)
    report(outcomes, neighbour is not None)


def report(outcomes: list[Outcome], loaded: bool) -> None:
    rows = [
        (
            o.kind,
            o.exit_code,
            "–" if o.after_teardown_s is None else round(o.after_teardown_s, 1),
            o.children_left,
            o.pid_files_left,
            o.status,
            o.reason,
            "ok" if o.ok else "FAIL",
        )
        for o in outcomes
    ]
    headers = ("end", "exit", "exit-teardown s", "children", "pid files", "status", "reason", "")
    print(table(headers, rows))
    measured = [o.after_teardown_s for o in outcomes if o.after_teardown_s is not None]
    worst = max(measured, default=float("nan"))
    passed = sum(o.ok for o in outcomes)
    neighbour = "with a neighbour stack at load" if loaded else "on an otherwise idle stack"
    print(
        f"{passed}/{len(outcomes)} runs ended cleanly {neighbour}; "
        f"worst exit after teardown {worst:.1f} s (goal <= {GOAL_S:g} s)"
    )
    print(verdict(passed == len(outcomes), f"every CLI ended <= {GOAL_S:g} s after its teardown"))


if __name__ == "__main__":
    main()
