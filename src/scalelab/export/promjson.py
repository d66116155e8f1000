"""Fast decoding of Prometheus ``query_range`` responses into numpy arrays.

Decoding ``[[ts, "value"], ...]`` with the stdlib json builds three Python
objects per point and tops out near 1.5 M points/s. Here the ``"values"``
arrays are cut out of the body before the (then small) remainder goes through
json, and their text is turned into CSV in one ``bytes.translate`` pass (drop
``[`` and whitespace, ``]`` becomes a line break, leaving ``,ts,"value"``
rows) that Arrow's CSV reader converts in C++, ``NaN`` and ``±Inf``
included, at several million points per second.

The cut is safe for any valid JSON: a ``"values"`` key followed by ``:`` and
``[`` cannot occur inside a JSON string (its quotes would be escaped), and a
values array holds only numbers and numeric strings, so the first ``]``
followed by ``]`` closes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from scalelab.errors import ScalelabError

_VALUES_START = re.compile(rb'"values"\s*:\s*\[')
_VALUES_EMPTY = re.compile(rb"\s*\]")
_VALUES_END = re.compile(rb"\]\s*\]")
_TO_CSV = bytes.maketrans(b"]", b"\n")
_DROPPED = b"[ \t\r\n"
_READ = pcsv.ReadOptions(column_names=["", "t", "v"], use_threads=False, block_size=1 << 24)
_CONVERT = pcsv.ConvertOptions(
    include_columns=["t", "v"],
    column_types={"t": pa.float64(), "v": pa.float64()},
    null_values=[],
    strings_can_be_null=False,
    quoted_strings_can_be_null=False,
)


class ResponseError(ScalelabError):
    """A Prometheus answer that is not the successful matrix we asked for."""


@dataclass(frozen=True)
class SeriesBlock:
    """The series of one response: label sets, and all points in series order."""

    labels: list[dict[str, str]]
    counts: np.ndarray
    """Points per series (int64), in the order of ``labels``."""
    timestamps_ns: np.ndarray
    """Epoch nanoseconds (int64), millisecond resolution as Prometheus keeps them."""
    values: np.ndarray
    """float64 sample values."""

    @property
    def points(self) -> int:
        return int(self.values.size)


def parse_matrix(body: bytes) -> SeriesBlock:
    """Decode a ``query_range`` body; raise :class:`ResponseError` if it is not a matrix."""
    skeleton, spans = _cut_values(body)
    try:
        document = json.loads(skeleton)
    except ValueError as exc:
        raise ResponseError(f"response is not JSON: {exc}") from exc
    results = _matrix_results(document)
    labels, ordered = _series(results, spans)
    counts = np.array([_count(span) for span in ordered], dtype=np.int64)
    timestamps_ns, values = _points(ordered, int(counts.sum()))
    return SeriesBlock(labels, counts, timestamps_ns, values)


def _cut_values(body: bytes) -> tuple[bytes, list[bytes]]:
    """Replace each values array by its index; return the rows cut out (``[t,"v"],...``)."""
    pieces: list[bytes] = []
    spans: list[bytes] = []
    position = 0
    while found := _VALUES_START.search(body, position):
        if empty := _VALUES_EMPTY.match(body, found.end()):
            spans.append(b"")
            end = empty.end()
        elif close := _VALUES_END.search(body, found.end()):
            spans.append(body[found.end() : close.start() + 1])
            end = close.end()
        else:
            raise ResponseError("response ends inside a values array")
        pieces.append(body[position : found.start()])
        pieces.append(b'"values":%d' % (len(spans) - 1))
        position = end
    pieces.append(body[position:])
    return b"".join(pieces), spans


def _matrix_results(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        raise ResponseError(f"Prometheus answered with an error: {error or document!r}")
    data = document.get("data") or {}
    if data.get("resultType") != "matrix":
        raise ResponseError(f"expected a matrix result, got {data.get('resultType')!r}")
    results: list[dict[str, Any]] = data.get("result") or []
    return results


def _series(
    results: list[dict[str, Any]], spans: list[bytes]
) -> tuple[list[dict[str, str]], list[bytes]]:
    """Label sets and value spans in result order; each span must be used once, in order."""
    labels = []
    ordered = []
    used = 0
    for result in results:
        index = result.get("values")
        if index is not None and index != used:
            raise ResponseError("unexpected shape of a series' values")
        labels.append(dict(result.get("metric") or {}))
        ordered.append(b"" if index is None else spans[index])
        used += index is not None
    if used != len(spans):
        raise ResponseError("values arrays found outside the result series")
    return labels, ordered


def _count(span: bytes) -> int:
    """Rows in a span: each holds exactly one ``[``."""
    return span.count(b"[")


def _points(spans: list[bytes], total: int) -> tuple[np.ndarray, np.ndarray]:
    if total == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    text = (b"," + b",".join(span for span in spans if span)).translate(_TO_CSV, _DROPPED)
    try:
        table = pcsv.read_csv(pa.py_buffer(text), read_options=_READ, convert_options=_CONVERT)
    except pa.ArrowInvalid as exc:
        raise ResponseError(f"unreadable sample values: {exc}") from exc
    if table.num_rows != total:
        raise ResponseError(f"decoded {table.num_rows} samples where {total} were expected")
    seconds = table.column("t").to_numpy()
    timestamps_ns = np.rint(seconds * 1000.0).astype(np.int64) * 1_000_000
    return timestamps_ns, table.column("v").to_numpy()
