"""Figures with their units, for the terminal summary and the report (`1 s`, `300 ms`, `90.0 %`)."""

from __future__ import annotations

from typing import Any

SLO_UNITS = {"latency_p99": "s", "latency_p95": "s", "min_throughput_ratio": "ratio"}
"""Units of the SLO entries, for summaries written before entries carried their own."""


def seconds(value: float | None) -> str:
    """Seconds as `1 s`, `1.5 s` from one second up, else `300 ms`, `12.3 ms`."""
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f} s"
    if abs(value) >= 1:
        return f"{value:.3g} s"
    return f"{value * 1000:.3g} ms"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def with_unit(value: Any, unit: str | None) -> str:
    """A value in its unit ("s" or "ratio"); other values as they are."""
    if value is None:
        return "–"
    if unit == "s":
        return seconds(float(value))
    if unit == "ratio":
        return ratio(float(value))
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def slo_values(name: str, entry: dict[str, Any]) -> tuple[str, str]:
    """An SLO entry's target and measured value, each with its unit."""
    unit = entry.get("unit") or SLO_UNITS.get(name)
    return with_unit(entry.get("target"), unit), with_unit(entry.get("measured"), unit)
