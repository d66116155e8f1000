"""Every decision as data: one row per decision, written to `decisions.parquet`.

A rescale's row is completed later with the times it became effective (the workers
were started or stopped) and complete (the consumer group holds the wanted members
and every partition), so the table explains each rescale from request to completion.
For a Flink job's parallelism the times are those of the job's rescale record: requested
(the REST call), effective (the job runs at the new parallelism, every task RUNNING) and
complete (the first checkpoint after that).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("elapsed_s", pa.float64()),
        ("policy", pa.string()),
        ("inputs", pa.string()),
        ("current", pa.int32()),
        ("wanted", pa.int32()),
        ("target", pa.int32()),
        ("action", pa.string()),
        ("reason", pa.string()),
        ("requested_ns", pa.int64()),
        ("effective_ns", pa.int64()),
        ("completed_ns", pa.int64()),
    ]
)


@dataclass
class Decision:
    time_ns: int
    elapsed_s: float
    policy: str
    inputs: str  # the Signals the policy read, as JSON
    current: int
    wanted: int  # what the policy asked for
    target: int  # after [min, max]: what was (or would have been) requested
    action: str  # scale-up | scale-down | none | held
    reason: str
    requested_ns: int | None = None
    effective_ns: int | None = None
    completed_ns: int | None = None

    @property
    def rescale(self) -> bool:
        return self.action in ("scale-up", "scale-down")


def inputs_json(inputs: dict[str, object]) -> str:
    return json.dumps(inputs, sort_keys=True)


def write_decisions(path: Path, rows: list[Decision]) -> None:
    table = pa.Table.from_pylist([asdict(row) for row in rows], schema=SCHEMA)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def read_decisions(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows
