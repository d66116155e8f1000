"""Trace replay: a CSV column of send timestamps, or of one rate per second."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from scalelab.errors import ConfigError
from scalelab.load.config import TraceLoad
from scalelab.load.paths import resolve_path
from scalelab.load.profile_base import PiecewiseProfile, RateProfile
from scalelab.load.rates import PiecewiseRate, RateConversion


def read_trace_column(path: Path, column: str | int) -> np.ndarray:
    """The values of one column, as floats; a first row that is not numeric is a header."""
    rows = _read_rows(path)
    header: list[str] | None = None
    if rows and not _is_number(_cell(rows[0], 0 if isinstance(column, str) else column)):
        header, rows = [name.strip() for name in rows[0]], rows[1:]
    index = _column_index(path, column, header)
    values = [_parse(path, row, index, line) for line, row in _numbered(rows, header)]
    if not values:
        raise ConfigError(f"trace {path}: no values in column {column!r}")
    array = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ConfigError(f"trace {path}: values must be finite and >= 0")
    return array


class TraceRatesProfile(PiecewiseProfile):
    """One rate per second from a CSV; the rate is 0 after the trace ends."""

    def __init__(self, spec: TraceLoad, base_dir: Path | str | None = None):
        rates = read_trace_column(resolve_path(spec.path, base_dir), spec.column)
        rates = rates[: math.ceil(spec.duration)]
        edges = np.minimum(np.arange(len(rates) + 1, dtype=float), spec.duration)
        if edges[-1] < spec.duration:
            edges, rates = np.append(edges, spec.duration), np.append(rates, 0.0)
        super().__init__(spec, PiecewiseRate.steps(edges, rates))


class TraceTimestampsProfile(RateProfile):
    """Replays recorded send times exactly (sorted); times at or after `duration` are cut.

    A `max_mbps` ceiling delays messages so that no two are closer than one
    message at the ceiling rate; messages pushed past `duration` are dropped.
    """

    def __init__(self, spec: TraceLoad, base_dir: Path | str | None = None):
        super().__init__(spec)
        stamps = np.sort(read_trace_column(resolve_path(spec.path, base_dir), spec.column))
        self.timestamps = stamps[stamps < self.duration]

    def _rate_at(self, elapsed: float) -> float:
        second = math.floor(elapsed)
        lo, hi = np.searchsorted(self.timestamps, [second, second + 1], side="left")
        return float(hi - lo)

    def schedule(self, conversion: RateConversion) -> Iterator[float]:
        if conversion.max_msgs_per_s is None:
            yield from self.timestamps.tolist()
            return
        gap, previous = 1.0 / conversion.max_msgs_per_s, -math.inf
        for stamp in self.timestamps.tolist():
            previous = max(stamp, previous + gap)
            if previous >= self.duration:
                return
            yield previous

    def expected_count(self, conversion: RateConversion) -> int:
        cap = conversion.max_msgs_per_s
        count = len(self.timestamps)
        return count if cap is None else min(count, math.ceil(cap * self.duration))

    def count_before(self, t: float, conversion: RateConversion) -> int:
        """How many messages `schedule` sends before offset t (exact; the trace is in memory)."""
        if conversion.max_msgs_per_s is None:
            return int(np.searchsorted(self.timestamps, t, side="left"))
        return sum(1 for sent in self.schedule(conversion) if sent < t)


def _trace_profile(spec: TraceLoad, base_dir: Path | str | None = None) -> RateProfile:
    if spec.column_kind == "rates":
        return TraceRatesProfile(spec, base_dir)
    return TraceTimestampsProfile(spec, base_dir)


def trace_profile(spec: TraceLoad, base_dir: Path | str | None = None) -> RateProfile:
    """The trace profile for the spec's column kind."""
    if spec.column_kind == "rates":
        return TraceRatesProfile(spec, base_dir)
    return TraceTimestampsProfile(spec, base_dir)


def _read_rows(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="") as handle:
            return [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except FileNotFoundError as e:
        raise ConfigError(f"trace {path}: no such file") from e
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"trace {path}: cannot be read as CSV ({e})") from e


def _cell(row: list[str], index: int) -> str:
    return row[index] if 0 <= index < len(row) else ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_index(path: Path, column: str | int, header: list[str] | None) -> int:
    if isinstance(column, int):
        return column
    if header is None or column not in header:
        found = ", ".join(header) if header else "no header row"
        raise ConfigError(f"trace {path}: no column named {column!r} ({found})")
    return header.index(column)


def _numbered(rows: list[list[str]], header: list[str] | None) -> list[tuple[int, list[str]]]:
    first = 2 if header is not None else 1
    return [(first + n, row) for n, row in enumerate(rows)]


def _parse(path: Path, row: list[str], index: int, line: int) -> float:
    if not 0 <= index < len(row):
        raise ConfigError(f"trace {path}: row {line} has no column {index}")
    text = row[index].strip()
    try:
        return float(text)
    except ValueError as e:
        raise ConfigError(f"trace {path}: row {line}: {text!r} is not a number") from e
