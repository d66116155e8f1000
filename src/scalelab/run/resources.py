"""CPU time per component between two moments, from the processes the platform runs.

Besides the components, the sampler reads the host's busy CPU seconds (every
CPU, every process) so a run can tell how much of the machine it did not use
itself: a busy neighbour makes latency and energy figures of a run that looked
controlled. The orchestrator (this process) counts as the run's own.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

ORCHESTRATOR = "orchestrator"
"""Component name of the process running `scalelab run` itself."""
IDLE_FIELDS = ("idle", "iowait", "steal")
"""Host CPU time that is not busy (the same modes the analysis treats as idle)."""


def cpu_seconds(pid: int, children: bool = True) -> float | None:
    """User + system CPU time of a process (and its children), or None if it is gone."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True) if children else ():
            total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.Error:
        return None


def host_busy_seconds() -> float:
    """CPU seconds the whole host spent busy (all CPUs, all processes) since boot."""
    times = psutil.cpu_times()
    total = sum(times)
    idle = sum(getattr(times, name, 0.0) for name in IDLE_FIELDS)
    # guest time is already inside user/nice on Linux: do not count it twice
    guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return float(total - idle - guest)


class CpuSampler:
    """Keeps the latest CPU time of each component, so usage survives a component's exit.

    The orchestrator's own process is sampled alongside the platform's
    components (without its children, which are the components themselves).
    """

    def __init__(self) -> None:
        self.first: dict[str, tuple[float, float]] = {}
        self.last: dict[str, tuple[float, float]] = {}
        self.host_first: tuple[float, float] | None = None
        self.host_last: tuple[float, float] | None = None

    def sample(self, pids: dict[str, int]) -> None:
        now = time.monotonic()
        for name, used in self._read(pids).items():
            self.first.setdefault(name, (now, used))
            self.last[name] = (now, used)
        busy = host_busy_seconds()
        if self.host_first is None:
            self.host_first = (now, busy)
        self.host_last = (now, busy)

    def _read(self, pids: dict[str, int]) -> dict[str, float]:
        read = {name: cpu_seconds(pid) for name, pid in pids.items()}
        if pids:  # on a platform without local processes the host is not the run's
            read[ORCHESTRATOR] = cpu_seconds(os.getpid(), children=False)
        return {name: used for name, used in read.items() if used is not None}

    def reset(self) -> None:
        """Start counting from the next sample (e.g. at the start of the load phase)."""
        self.first.clear()
        self.last.clear()
        self.host_first = self.host_last = None

    def usage(self) -> dict[str, dict[str, float]]:
        """CPU seconds and average cores used by each component since the first sample."""
        usage = {}
        for name, (t0, c0) in self.first.items():
            t1, c1 = self.last[name]
            elapsed = t1 - t0
            usage[name] = {
                "cpu_seconds": round(c1 - c0, 3),
                "cores": round((c1 - c0) / elapsed, 3) if elapsed > 0 else 0.0,
            }
        return usage

    def host_usage(self) -> dict[str, Any]:
        """The host's busy CPU seconds over the same span, and the share the run did not use."""
        if self.host_first is None or self.host_last is None:
            return {}
        (t0, b0), (t1, b1) = self.host_first, self.host_last
        own = sum(u["cpu_seconds"] for u in self.usage().values())
        return host_share(b1 - b0, own, t1 - t0, measured=bool(self.first))


def host_share(busy: float, own: float, seconds: float, measured: bool = True) -> dict[str, Any]:
    """summary.json's `cpu_host`: host busy seconds, the run's own, and the foreign share.

    The share is None when the run's processes could not be measured here
    (components on another machine), or the host was not busy at all.
    """
    foreign = max(0.0, busy - own)
    share = round(foreign / busy, 4) if measured and busy > 0 else None
    return {
        "seconds": round(seconds, 3),
        "busy_seconds": round(busy, 3),
        "run_seconds": round(own, 3),
        "foreign_seconds": round(foreign, 3),
        "foreign_share": share,
    }
