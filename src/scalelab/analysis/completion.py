"""Which messages completed, once each, and which of the load phase's never did.

Delivery is at-least-once: after a worker dies, a message may be processed
twice. Every headline figure counts a message id once, at its first
completion (the earliest `done_ns`); the later records are duplicates,
reported apart.

Survivorship: a message whose intended send time lies in the load phase but
that never completed (the drain timed out, or it was lost) is not a fast
message left out of the percentiles, it is a message the system did not
serve. It is counted as `not_completed` and makes the verdict INVALID; the
latency percentiles are then a lower bound and are not claimed. Messages
dead-lettered (undecodable input) are not "not completed": they were handled.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

Qos = dict[str, np.ndarray]


def own_rows(qos: Qos, run_id: str | None) -> Qos:
    """Rows of this run only, where the table says which run each row belongs to."""
    if not qos or run_id is None or "run_id" not in qos:
        return qos
    mask = qos["run_id"] == run_id
    if mask.all():
        return qos
    return {name: values[mask] for name, values in qos.items()}


def first_completions(qos: Qos) -> tuple[Qos, dict[str, int]]:
    """Each message id's first completion, and how many records were duplicates."""
    if not qos or qos["id"].size == 0:
        return qos, {"records": 0, "messages": 0}
    order = np.lexsort((qos["done_ns"], qos["id"]))
    ids = qos["id"][order]
    first = np.ones(ids.size, dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    keep = order[first]
    keep.sort()
    duplicated = np.unique(ids[~first]).size
    dedup = {name: values[keep] for name, values in qos.items()}
    return dedup, {"records": int(ids.size - keep.size), "messages": int(duplicated)}


def completed_in(qos: Qos, start_ns: int, end_ns: int) -> int:
    """Messages (first completions) whose `done_ns` falls in [start, end)."""
    if not qos:
        return 0
    done = qos["done_ns"]
    return int(((done >= start_ns) & (done < end_ns)).sum())


def intended_in(qos: Qos, start_ns: int, end_ns: int) -> Qos:
    """Rows whose intended send time falls in [start, end)."""
    if not qos:
        return {}
    mask = (qos["intended_ns"] >= start_ns) & (qos["intended_ns"] < end_ns)
    return {name: values[mask] for name, values in qos.items()}


def seq_of(message_id: str) -> int | None:
    """The sequence number in a message id: `<run_id>:<seq>` (or a bare `<seq>`)."""
    try:
        return int(str(message_id).rsplit(":", 1)[-1])
    except ValueError:
        return None


def load_seq_range(producer: dict[str, Any], schedule_range: tuple[int, int] | None) -> Any:
    """[start, end) of the load phase's sequence numbers, and where it came from."""
    start, end = producer.get("load_seq_start"), producer.get("load_seq_end")
    if isinstance(start, int) and isinstance(end, int):
        return (start, end), "producer.json load_seq_start/load_seq_end"
    if schedule_range is not None:
        return schedule_range, "the spec's send schedule (producer.json has no load_seq_*)"
    return None, "unknown: producer.json has no load_seq_* and the schedule could not be rebuilt"


def survivorship(
    qos: Qos,
    seq_range: tuple[int, int] | None,
    basis: str,
    dead_letter_ids: Collection[str] = (),
    dead_unidentified: int = 0,
) -> dict[str, Any]:
    """How many of the load phase's messages completed, were dead-lettered, or never completed.

    `dead_unidentified`: dead-lettered messages known only by their number (the
    accounting's), used when no ids are given; they are taken to be among the
    load phase's missing ones, so the figure never over-counts what went unserved.
    """
    if seq_range is None:
        return {"load_messages": None, "completed": None, "dead_lettered": None,
                "not_completed": None, "basis": basis}  # fmt: skip
    start, end = seq_range
    seqs = set(qos["seq"].tolist()) if qos else set()
    done = {s for s in seqs if start <= s < end}
    dead = {s for s in map(seq_of, dead_letter_ids) if s is not None and start <= s < end}
    dead -= done
    total = max(0, end - start)
    dead_count = len(dead)
    if not dead_letter_ids and dead_unidentified:
        dead_count = min(dead_unidentified, total - len(done))
        basis += "; dead-lettered counted from the accounting (no ids)"
    return {
        "load_messages": total,
        "completed": len(done),
        "dead_lettered": dead_count,
        "not_completed": max(0, total - len(done) - dead_count),
        "basis": basis,
    }
