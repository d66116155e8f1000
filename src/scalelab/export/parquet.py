"""The long-format metrics table (one row a sample), streamed to Parquet.

Columns: ``metric``, ``labels`` (JSON of the label set without ``__name__``,
sorted keys), ``timestamp`` (ns, UTC), ``value``, and the well-known labels
``instance``, ``job``, ``component`` and ``run_id`` as their own columns (null
where a series lacks them), so analyses can filter without decoding JSON.
Columns are built from numpy arrays per series, never per point, and written
in row groups so memory stays bounded by the row-group size.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scalelab.export.promjson import SeriesBlock

WELL_KNOWN_LABELS = ("instance", "job", "component", "run_id")
_TEXT = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema(
    [
        pa.field("metric", _TEXT, nullable=False),
        pa.field("labels", _TEXT, nullable=False),
        pa.field("timestamp", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        *(pa.field(name, _TEXT) for name in WELL_KNOWN_LABELS),
    ]
)


def labels_json(metric: str, labels: dict[str, str]) -> str:
    """The label set as compact JSON with sorted keys.

    ``__name__`` is dropped when it is the row's metric; it is kept when a
    named query returns series of another name, so no series loses its name.
    """
    shown = {k: v for k, v in labels.items() if k != "__name__" or v != metric}
    return json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ParquetSink:
    """Buffers series blocks and writes them as zstd row groups of ``row_group_rows``.

    The file appears at ``path`` only when :meth:`close` succeeds; until then
    it is written next to it with a ``.partial`` suffix.
    """

    def __init__(self, path: Path, row_group_rows: int = 1_000_000):
        self.path = path
        self.points = 0
        self._partial = path.with_name(path.name + ".partial")
        self._row_group_rows = row_group_rows
        self._buffer: list[tuple[str, SeriesBlock]] = []
        self._buffered = 0
        self._series: set[tuple[str, str]] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._partial, SCHEMA, compression="zstd")

    @property
    def series(self) -> int:
        """Distinct (metric, labels) pairs written so far."""
        return len(self._series)

    def add(self, metric: str, block: SeriesBlock) -> None:
        self._buffer.append((metric, block))
        self._buffered += block.points
        if self._buffered >= self._row_group_rows:
            self.flush()

    def flush(self) -> None:
        if self._buffered:
            table = self._table(self._buffer)
            self._writer.write_table(table, row_group_size=self._row_group_rows)
            self.points += table.num_rows
        self._buffer = []
        self._buffered = 0

    def close(self) -> None:
        self.flush()
        self._writer.close()
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Close and remove the partial file, leaving nothing at ``path``."""
        self._writer.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _table(self, blocks: list[tuple[str, SeriesBlock]]) -> pa.Table:
        rows = [(metric, labels) for metric, block in blocks for labels in block.labels]
        keys = [(metric, labels_json(metric, labels)) for metric, labels in rows]
        self._series.update(keys)
        counts = np.concatenate([block.counts for _, block in blocks])
        columns = {
            "metric": _repeat_text([metric for metric, _ in keys], counts),
            "labels": _repeat_text([text for _, text in keys], counts),
            "timestamp": pa.array(
                np.concatenate([b.timestamps_ns for _, b in blocks]), pa.timestamp("ns", "UTC")
            ),
            "value": pa.array(np.concatenate([b.values for _, b in blocks]), pa.float64()),
        }
        for name in WELL_KNOWN_LABELS:
            columns[name] = _repeat_text([labels.get(name) for _, labels in rows], counts)
        return pa.table(columns, schema=SCHEMA)


def _repeat_text(per_series: Iterable[str | None], counts: np.ndarray) -> pa.DictionaryArray:
    """A dictionary column holding each series' text (or null) for each of its points."""
    codes: dict[str, int] = {}
    indices = np.array(
        [-1 if text is None else codes.setdefault(text, len(codes)) for text in per_series],
        dtype=np.int32,
    )
    per_point = np.repeat(indices, counts)
    mask = per_point < 0 if (indices < 0).any() else None
    return pa.DictionaryArray.from_arrays(
        pa.array(per_point, mask=mask), pa.array(list(codes), pa.string())
    )
