"""A small Prometheus HTTP API client for the live view: range and instant queries.

A query that fails (Prometheus not up yet, or already stopped) yields no
series, never an exception: the page keeps what it last showed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float | None]]


class Prometheus:
    def __init__(self, url: str, timeout: float = TIMEOUT_S):
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series] | None:
        """Every series of `expr` on [start, end]; None when Prometheus did not answer."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params)
        if data is None:
            return None
        return [
            Series(item.get("metric", {}), [(float(t), _number(v)) for t, v in item["values"]])
            for item in data
        ]

    def instant(self, expr: str, at: float | None = None) -> list[Series] | None:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if data is None:
            return None
        return [
            Series(item.get("metric", {}), [(float(item["value"][0]), _number(item["value"][1]))])
            for item in data
        ]

    def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]] | None:
        try:
            response = self.client.get(self.url + path, params=params)
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if body.get("status") != "success":
            return None
        result = body["data"]["result"]
        return result if isinstance(result, list) else None


def _number(text: str) -> float | None:
    """Prometheus's sample value; NaN and infinities (an empty histogram) become None."""
    value = float(text)
    return value if math.isfinite(value) else None
