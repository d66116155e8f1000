"""The terminal live view of a run: the phase, its steps, and sliding-window figures.

The orchestrator tells it what happens (`phase`, `step`, `tick`); it never
calls into the run. Rates are taken over the last `WINDOW_S` seconds
of ticks, not between two ticks half a second apart: a Poisson load at 6/s
reads about 6/s, not 11.2/s. With `watch(prometheus_url, run_id)` a
background thread adds what only Prometheus knows (target, completed/s, p99
over the same window, errors), using the live dashboard's PromQL.

On a terminal the view is one line redrawn in place while ticks come (load,
drain), and phases and steps are printed as lines: between ticks no live
display is held, so the export's own progress bar can run. When stdout is
not a terminal (a pipe, CI, a log file) it prints one plain line every
`PLAIN_EVERY_S` seconds instead of nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from scalelab.live.prom import Series

WINDOW_S = 5.0
PLAIN_EVERY_S = 5.0
WATCH_EVERY_S = 2.0


@dataclass(frozen=True)
class Figures:
    """What the line shows; None is "not known (yet)"."""

    elapsed: float | None = None
    produced: int | None = None
    lag: int | None = None
    sent_rate: float | None = None
    drain_rate: float | None = None
    target: float | None = None
    completed_rate: float | None = None
    p99: float | None = None
    errors: float | None = None


class Window:
    """Counts sampled over time; `rate()` is the change per second over the last WINDOW_S."""

    def __init__(self, seconds: float = WINDOW_S):
        self.seconds = seconds
        self.samples: deque[tuple[float, float]] = deque()

    def add(self, at: float, value: float) -> None:
        self.samples.append((at, value))
        while len(self.samples) > 2 and self.samples[1][0] <= at - self.seconds:
            self.samples.popleft()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 else None


def line(phase: str, detail: str, figures: Figures, duration: float | None) -> str:
    """The one-line view: phase, progress through it, and the figures that are known."""
    parts = [f"{phase:<8}"]
    if detail:
        parts.append(detail)
    if figures.elapsed is not None:
        total = f"/{duration:.0f}" if duration else ""
        parts.append(f"{figures.elapsed:5.0f}{total} s")
    known = [
        ("target", figures.target, "{:.1f}/s"),
        ("sent", figures.sent_rate, "{:.1f}/s"),
        (f"completed ({WINDOW_S:g} s)", figures.completed_rate, "{:.1f}/s"),
        ("p99", figures.p99, "{:.2f} s"),
        ("lag", figures.lag, "{:d}"),
        ("draining", figures.drain_rate, "{:.1f}/s"),
        ("errors", figures.errors, "{:.0f}"),
    ]
    parts += [f"{name} {form.format(value)}" for name, value, form in known if value is not None]
    return "  ".join(parts)


class LiveView:
    """Phase, steps and figures of one run, on a terminal or as plain lines."""

    def __init__(
        self,
        console: Console,
        duration: float | None = None,
        prometheus: str | None = None,
        run_id: str | None = None,
    ):
        self.console = console
        self.duration = duration
        self.interactive = console.is_terminal
        self.name, self.detail = "", ""
        self.figures = Figures()
        self.sent = Window()
        self.left = Window()
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._last_plain = 0.0
        self._last_text = ""
        self._ticked = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        if prometheus and run_id:
            self.watch(prometheus, run_id)

    # -- the API the orchestrator calls ---------------------------------------------------
    def phase(self, name: str, detail: str = "") -> None:
        """A new phase (setup, deploy, warmup, load, drain, export, analysis, teardown)."""
        if name != self.name:
            self._refresh(force=True)  # the previous phase's last figures stay on record
            self._end_live()
            with self._lock:
                self.left, self._ticked = Window(), False
                self.figures = replace(self.figures, elapsed=None, sent_rate=None, drain_rate=None)
            self._print(f"[bold]{escape(name)}[/bold] {escape(detail)}".rstrip())
        with self._lock:
            self.name, self.detail = name, detail
        self._refresh()

    def step(self, text: str) -> None:
        """One step inside the phase (`broker: ready in 2.1 s`, `export: metrics.parquet`)."""
        self._print(f"  · {escape(text)}")
        self._refresh()

    def tick(
        self, produced: int | None = None, lag: int | None = None, elapsed: float | None = None
    ) -> None:
        """The orchestrator's counts: messages produced so far, consumer lag, seconds elapsed."""
        now = time.monotonic()
        with self._lock:
            self._ticked = True
            changes: dict[str, object] = {"elapsed": elapsed, "lag": lag}
            if produced is not None:
                self.sent.add(now, produced)
                changes.update(produced=produced, sent_rate=self.sent.rate())
            if lag is not None and self.name in ("drain", "cooldown"):
                self.left.add(now, -lag)
                changes["drain_rate"] = self.left.rate()
            self.figures = replace(self.figures, **changes)  # type: ignore[arg-type]
        if self.interactive and self._live is None and not self._stop.is_set():
            self._live = Live(Text(""), console=self.console, auto_refresh=False)
            self._live.start()
        self._refresh()

    def update(self, phase: str, elapsed: float, produced: int, lag: int) -> None:
        """The former single call: phase name, elapsed seconds, produced and lag."""
        if phase != self.name:
            self.phase(phase)
        self.tick(produced, lag, elapsed)

    def watch(self, prometheus: str, run_id: str) -> None:
        """Add target, completed/s, p99 and errors from the run's Prometheus (a thread)."""
        if self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._poll, args=(prometheus, run_id), name="liveview-prometheus", daemon=True
        )
        self._watcher.start()

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> LiveView:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._refresh(force=True)
        self._end_live()
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    # -- internals ------------------------------------------------------------------------
    def _end_live(self) -> None:
        """Leave the redrawn line where it is: the next phase may bring its own display."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _print(self, markup: str) -> None:
        self.console.print(markup, highlight=False)

    def _refresh(self, force: bool = False) -> None:
        """Redraw (terminal) or print a plain line (every PLAIN_EVERY_S), in ticking phases."""
        with self._lock:
            if not self._ticked:
                return
            text = line(self.name, self.detail, self.figures, self.duration)
        if self._live is not None:
            self._live.update(Text(text), refresh=True)
            return
        now = time.monotonic()
        due = force or now - self._last_plain >= PLAIN_EVERY_S
        if due and text != self._last_text:
            self._last_plain, self._last_text = now, text
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def _poll(self, prometheus: str, run_id: str) -> None:
        from scalelab.live.prom import Prometheus
        from scalelab.live.queries import backlog_panel, duration, latency_panel, rate_panel

        window = duration(WINDOW_S)
        run = f'run_id="{run_id}"'
        wanted = {
            "target": rate_panel(run, window).queries[0].expr,
            "completed_rate": rate_panel(run, window).queries[2].expr,
            "p99": latency_panel(run, window).queries[2].expr,
            "errors": backlog_panel(run).queries[1].expr,
        }
        client = Prometheus(prometheus, timeout=WATCH_EVERY_S)
        try:
            while not self._stop.wait(WATCH_EVERY_S):
                found = {key: _value(client.instant(expr)) for key, expr in wanted.items()}
                with self._lock:
                    self.figures = replace(self.figures, **found)  # type: ignore[arg-type]
                self._refresh()
        finally:
            client.close()


def _value(series: list[Series] | None) -> float | None:
    if not series or not series[0].points:
        return None
    return series[0].points[0][1]
