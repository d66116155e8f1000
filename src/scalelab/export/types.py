"""The inputs and the result of an export, kept JSON-friendly for the run record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scalelab.export.gaps import Gap
from scalelab.export.segments import Window, format_time

ProgressCallback = Callable[[int, int], None]
"""Called with (requests done, requests in all) as the export advances."""


@dataclass(frozen=True)
class MetricQuery:
    """A named PromQL expression; ``step`` overrides the export's step when set."""

    name: str
    query: str
    step: float | None = None


@dataclass(frozen=True)
class FailedSegment:
    """A request that failed for good: what it asked for, over which segment, and why."""

    metric: str
    query: str
    start: datetime
    end: datetime
    error: str

    def to_dict(self) -> dict[str, str]:
        return {
            "metric": self.metric,
            "query": self.query,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "error": self.error,
        }


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote; ``to_dict()`` is what the run record stores."""

    path: Path
    window: Window
    series: int
    points: int
    requests: int
    seconds: float
    message: str
    failed: list[FailedSegment] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    """Holes in Prometheus's own data: stretches in which it scraped nothing."""

    @property
    def complete(self) -> bool:
        """True when every request succeeded and the data has no hole (an empty window
        with nothing expected in it is complete)."""
        return not self.failed and not self.gaps

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "window": self.window.to_dict(),
            "series": self.series,
            "points": self.points,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "complete": self.complete,
            "message": self.message,
            "failed": [failure.to_dict() for failure in self.failed],
            "gaps": [gap.to_dict() for gap in self.gaps],
        }
