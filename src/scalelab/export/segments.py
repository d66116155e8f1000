"""Time windows in UTC, a strict time parser, and segmenting for range queries.

A Prometheus range query returns at most 11,000 points per series and includes
both ends of its range, so a long window is cut into segments on the step grid
where each segment ends one step before the next one starts. Raw samples
(range-vector selectors) are read in spans of whole milliseconds, each starting
one millisecond after the previous one ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from scalelab.errors import ConfigError

PROMETHEUS_MAX_POINTS = 11_000
"""Most points Prometheus returns per series for one range query."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EPOCH_SECONDS = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Window:
    """A closed time interval ``[start, end]``, held in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _as_utc(self.start, "window start"))
        object.__setattr__(self, "end", _as_utc(self.end, "window end"))
        if self.end < self.start:
            raise ConfigError(
                f"window ends ({format_time(self.end)}) before it starts "
                f"({format_time(self.start)})"
            )

    @classmethod
    def parse(cls, start: str, end: str) -> Window:
        """A window from two texts that :func:`parse_time` accepts."""
        return cls(parse_time(start), parse_time(end))

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_dict(self) -> dict[str, str]:
        return {"start": format_time(self.start), "end": format_time(self.end)}


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 with ``Z`` or an explicit offset, or epoch seconds, into UTC.

    A time without an offset is rejected rather than read as local time or
    UTC: guessing the zone is how experiment data ended up in the wrong hour.
    """
    stripped = text.strip()
    if _EPOCH_SECONDS.match(stripped):
        return _from_epoch(Decimal(stripped))
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError as exc:
        raise ConfigError(
            f"time {text!r} is neither RFC 3339 (2026-11-22T09:00:00Z) nor epoch seconds"
        ) from exc
    if parsed.tzinfo is None:
        raise ConfigError(
            f"time {text!r} has no UTC offset; write it with 'Z' "
            "(2026-11-22T09:00:00Z) or an explicit offset (2026-11-22T10:00:00+01:00)"
        )
    return parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as run records store times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def plan_segments(
    window: Window, step: float, max_points: int = PROMETHEUS_MAX_POINTS
) -> list[Window]:
    """Cut ``window`` into range-query segments of at most ``max_points`` steps.

    Every segment starts and ends on a multiple of ``step`` since the epoch (so
    samples from different exports line up), the first grid point at or after
    the window start and the last at or before its end. Consecutive segments
    do not overlap: one ends a step before the next begins, so no boundary
    sample is fetched twice. A window with no grid point gives no segments.
    """
    step_us = step_microseconds(step)
    check_segment_points(max_points)
    first = -(-_epoch_us(window.start) // step_us) * step_us
    last = _epoch_us(window.end) // step_us * step_us
    span = (max_points - 1) * step_us
    segments = []
    for start in range(first, last + 1, span + step_us):
        segments.append(Window(_from_us(start), _from_us(min(start + span, last))))
    return segments


def check_segment_points(max_points: int) -> None:
    if not 1 <= max_points <= PROMETHEUS_MAX_POINTS:
        raise ConfigError(
            f"segment points must be between 1 and {PROMETHEUS_MAX_POINTS} "
            f"(the most Prometheus returns per series), got {max_points}"
        )


def plan_spans(window: Window, span: float) -> list[Window]:
    """Cut ``window`` into spans of whole milliseconds, each at most ``span`` seconds long.

    Prometheus keeps sample times in milliseconds, so spans that start one
    millisecond after the previous one ends cover every sample of the window
    exactly once: from the first millisecond at or after its start to the last
    at or before its end.
    """
    span_ms = max(1, round(span * 1000))
    first = -(-_epoch_us(window.start) // 1000)
    last = _epoch_us(window.end) // 1000
    return [
        Window(_from_us(start * 1000), _from_us(min(start + span_ms - 1, last) * 1000))
        for start in range(first, last + 1, span_ms)
    ]


def step_microseconds(step: float) -> int:
    """The step in whole microseconds; Prometheus resolves steps to milliseconds."""
    step_ms = round(step * 1000)
    if step_ms < 1:
        raise ConfigError(f"step must be at least 1 ms, got {step!r} s")
    return step_ms * 1000


def epoch_text(moment: datetime) -> str:
    """Epoch seconds with millisecond precision, as Prometheus's API takes them."""
    return f"{Decimal(_epoch_us(moment)) / 1_000_000:.3f}"


def _as_utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(f"{what} {moment.isoformat()} has no UTC offset")
    return moment.astimezone(UTC)


def _from_epoch(seconds: Decimal) -> datetime:
    return _from_us(int((seconds * 1_000_000).to_integral_value()))


def _epoch_us(moment: datetime) -> int:
    return (moment - EPOCH) // _MICROSECOND


def _from_us(microseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=microseconds)
