"""Which run the dashboard shows, and what run.json says about it so far.

`scalelab run` starts the dashboard before the run directory exists: the
follower picks the newest run directory whose record names this process as
its owner (so repetitions are followed one after the other, and another
scalelab's runs never are). run.json is replaced atomically by the
orchestrator, so reading it at any moment gives a whole record.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from scalelab.run.record import parse_rfc3339

DEFAULT_SCRAPE_S = 1.0
START_FILE = "producer-start.json"
"""The producer's START_FILE (not imported: that module pulls in the Kafka client)."""


@dataclass(frozen=True)
class Band:
    """A stretch of time on the charts: a phase or an injected fault (epoch seconds)."""

    kind: str
    label: str
    start: float
    end: float | None


@dataclass(frozen=True)
class RunState:
    id: str
    dir: Path
    status: str
    prometheus: str | None
    scrape_interval_s: float
    started: float
    phases: list[Band] = field(default_factory=list)
    faults: list[Band] = field(default_factory=list)


class RunFollower:
    """The run to show: this process's newest run under `runs`, or a given run directory.

    With a run directory and `runs`, the newest run under `runs` that uses the same
    Prometheus is shown instead once there is one: a stack left up by `scalelab up`
    is followed into the runs that reuse it.
    """

    def __init__(self, runs: Path | None = None, run_dir: Path | None = None, pid: int = 0):
        self.runs = runs
        self.fixed = run_dir
        self.pid = pid or os.getpid()

    def current(self) -> RunState | None:
        run_dir = self._newest_sharing() if self.fixed else self._newest_own()
        if run_dir is None:
            return None
        record = _read_json(run_dir / "run.json")
        return None if record is None else state_of(run_dir, record)

    def _newest_sharing(self) -> Path | None:
        assert self.fixed is not None
        record = _read_json(self.fixed / "run.json") or {}
        prometheus = record.get("endpoints", {}).get("prometheus")
        if prometheus is None or self.runs is None:
            return self.fixed
        found = self._newest(lambda r: r.get("endpoints", {}).get("prometheus") == prometheus)
        return found or self.fixed

    def _newest_own(self) -> Path | None:
        return self._newest(lambda r: r.get("owner", {}).get("pid") == self.pid)

    def _newest(self, wanted: Callable[[dict[str, Any]], bool]) -> Path | None:
        if self.runs is None or not self.runs.is_dir():
            return None
        for run_dir in sorted(self.runs.iterdir(), key=_mtime, reverse=True):
            record = _read_json(run_dir / "run.json")
            if record and wanted(record):
                return run_dir
        return None


def state_of(run_dir: Path, record: dict[str, Any]) -> RunState:
    spec = _spec(run_dir)
    phases = [
        Band("phase", p["name"], _epoch(p["start"]), _epoch(p["end"]) if p.get("end") else None)
        for p in record.get("phases", [])
    ]
    return RunState(
        id=str(record["id"]),
        dir=run_dir,
        status=str(record.get("status", "running")),
        prometheus=record.get("endpoints", {}).get("prometheus"),
        scrape_interval_s=_seconds(spec.get("monitoring", {}).get("scrape_interval")),
        started=_epoch(record["started"]),
        phases=phases + load_bands(run_dir, spec, phases),
        faults=fault_bands(record.get("events", [])) or planned_faults(run_dir, spec),
    )


def load_bands(run_dir: Path, spec: dict[str, Any], phases: list[Band]) -> list[Band]:
    """Warmup and load while they go on: run.json gets them only once the load has ended.

    The producer writes its start time (producer-start.json) when the load begins; the
    spec gives the warmup. Once run.json has a load phase, that one is used instead.
    """
    if any(p.label == "load" for p in phases):
        return []
    start = _read_json(run_dir / START_FILE)
    if start is None or "start_ns" not in start:
        return []
    begin = int(start["start_ns"]) / 1e9
    warmup = _seconds(spec.get("load", {}).get("warmup"), 0.0)
    if warmup <= 0:
        return [Band("phase", "load", begin, None)]
    now = time.time()
    if now < begin + warmup:
        return [Band("phase", "warmup", begin, None)]
    return [
        Band("phase", "warmup", begin, begin + warmup),
        Band("phase", "load", begin + warmup, None),
    ]


def fault_bands(events: list[dict[str, str]]) -> list[Band]:
    """Each injected fault, from its time to the next group change it caused (else a point).

    Group membership events are consequences, not faults: they close a fault's band.
    """
    bands: list[Band] = []
    times = [(_epoch(e["time"]), e) for e in events if "time" in e]
    for at, event in times:
        if event["kind"].startswith("group-member") or event["kind"] == "interrupt":
            continue
        after = [t for t, e in times if t > at and e["kind"].startswith("group-member")]
        label = f"{event['kind']} {event.get('component', '')}".strip()
        bands.append(Band("fault", label, at, min(after) if after else at))
    return bands


def planned_faults(run_dir: Path, spec: dict[str, Any]) -> list[Band]:
    """The spec's faults whose time has come, while run.json does not list them yet.

    The orchestrator injects a fault `at` seconds after the producer's start and writes
    its event into run.json only at the next save (the end of the load): until then the
    band is placed from the spec and the producer's start time.
    """
    start = _read_json(run_dir / START_FILE)
    if start is None or "start_ns" not in start:
        return []
    begin, now = int(start["start_ns"]) / 1e9, time.time()
    bands = []
    for fault in spec.get("faults") or []:
        at = begin + _seconds(fault.get("at"), float("inf"))
        if at <= now:
            label = f"{fault.get('kind', 'fault')} #{fault.get('worker', 0)}"
            bands.append(Band("fault", label, at, at))
    return bands


def _spec(run_dir: Path) -> dict[str, Any]:
    """The resolved spec.yaml (durations in seconds), or {} when it cannot be read."""
    try:
        spec = YAML(typ="safe").load((run_dir / "spec.yaml").read_text())
    except (OSError, YAMLError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _seconds(value: object, default: float = DEFAULT_SCRAPE_S) -> float:
    """A resolved spec's duration (a number of seconds); `default` when absent or odd."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return default


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _epoch(text: str) -> float:
    return parse_rfc3339(text).timestamp()
