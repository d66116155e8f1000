"""The live view of a run: phase, elapsed time, achieved rate and consumer lag."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class LiveView:
    """A rich progress bar over the load duration, with live figures in its description."""

    def __init__(self, console: Console, duration: float):
        self.duration = duration
        self.progress = Progress(
            TextColumn("[bold]{task.fields[phase]:<7}"),
            BarColumn(),
            TextColumn("{task.completed:>5.0f}/{task.total:.0f} s"),
            TextColumn("{task.fields[figures]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("load", total=duration, phase="start", figures="")
        self.last: tuple[float, int] | None = None

    def __enter__(self) -> LiveView:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def update(self, phase: str, elapsed: float, produced: int, lag: int) -> None:
        now = time.monotonic()
        rate = 0.0
        if self.last is not None and now > self.last[0]:
            rate = (produced - self.last[1]) / (now - self.last[0])
        self.last = (now, produced)
        figures = f"sent {produced:>7}  rate {rate:7.1f}/s  lag {lag:>6}"
        self.progress.update(
            self.task, completed=min(elapsed, self.duration), phase=phase, figures=figures
        )
