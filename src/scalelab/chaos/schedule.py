"""Runs the faults at their times and records each as an event with its window.

`tick(elapsed)` from the orchestrator's loop begins and ends what is due; `close()`
ends whatever is still active (a run that stops early leaves no worker paused).
The windows go into run.json (`results.chaos`) so the report marks them on every chart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from scalelab.chaos.injectors import Injector, Target, injector
from scalelab.chaos.spec import ChaosFault

RecordEvent = Callable[[str, str], None]


@dataclass
class Window:
    kind: str
    at: float
    duration: float
    start_ns: int | None = None
    end_ns: int | None = None
    begin: str = ""
    end: str = ""

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class _Active:
    fault: ChaosFault
    injector: Injector
    window: Window


class ChaosSchedule:
    def __init__(self, faults: list[ChaosFault], target: Target, record_event: RecordEvent):
        self.pending = sorted(faults, key=lambda f: f.at)
        self.injectors = {id(f): injector(f, target) for f in self.pending}  # fail early
        self.active: list[_Active] = []
        self.windows: list[Window] = []
        self.record_event = record_event

    def tick(self, elapsed: float) -> None:
        for active in self.active[:]:
            if elapsed >= active.fault.at + active.fault.duration:
                self._end(active)
        for fault in self.pending[:]:
            if elapsed >= fault.at:
                self.pending.remove(fault)
                self._begin(fault)

    def _begin(self, fault: ChaosFault) -> None:
        window = Window(fault.kind, fault.at, fault.duration, start_ns=time.time_ns())
        inj = self.injectors[id(fault)]
        window.begin = inj.begin()
        self.windows.append(window)
        self.active.append(_Active(fault, inj, window))
        self.record_event(f"chaos-{fault.kind}", f"begin: {window.begin}")

    def _end(self, active: _Active) -> None:
        self.active.remove(active)
        active.window.end = active.injector.end()
        active.window.end_ns = time.time_ns()
        self.record_event(f"chaos-{active.fault.kind}", f"end: {active.window.end}")

    def close(self) -> None:
        for active in self.active[:]:
            self._end(active)
        self.pending.clear()

    def to_list(self) -> list[dict[str, object]]:
        return [w.to_dict() for w in self.windows]
