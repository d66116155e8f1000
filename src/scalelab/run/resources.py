"""CPU time per component between two moments, from the processes the platform runs."""

from __future__ import annotations

import time

import psutil


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its children, or None if it is gone."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.Error:
        return None


class CpuSampler:
    """Keeps the latest CPU time of each component, so usage survives a component's exit."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[float, float]] = {}
        self.last: dict[str, tuple[float, float]] = {}

    def sample(self, pids: dict[str, int]) -> None:
        now = time.monotonic()
        for name, pid in pids.items():
            used = cpu_seconds(pid)
            if used is None:
                continue
            self.first.setdefault(name, (now, used))
            self.last[name] = (now, used)

    def reset(self) -> None:
        """Start counting from the next sample (e.g. at the start of the load phase)."""
        self.first.clear()
        self.last.clear()

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
