"""What each injected fault did: which partitions a killed worker held, and how long until
the others took them over.

The partitions a worker held are those of its qos rows before the kill. The
recovery time is from the kill (the run event's time) until every one of
those partitions had a completion by another worker; None, with
`recovered: false`, when some partition never had one.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from scalelab.analysis.completion import Qos

FAULT_KINDS = frozenset({"kill-worker"})
WORKER_IN_DETAIL = re.compile(r"\b(worker-\d+)\b")


def fault_table(
    events: list[dict[str, Any]], qos: Qos, origin_ns: int | None
) -> list[dict[str, Any]]:
    """One entry per injected fault event, in the order they happened."""
    return [
        _fault(event, qos, origin_ns)
        for event in events
        if event.get("kind") in FAULT_KINDS and event.get("time")
    ]


def component_of(event: dict[str, Any]) -> str | None:
    """The event's `component`, else the `worker-N` its detail names."""
    if event.get("component"):
        return str(event["component"])
    found = WORKER_IN_DETAIL.search(str(event.get("detail", "")))
    return found.group(1) if found else None


def _fault(event: dict[str, Any], qos: Qos, origin_ns: int | None) -> dict[str, Any]:
    at_ns = int(pd.Timestamp(event["time"]).value)
    component = component_of(event)
    held = held_partitions(qos, component, at_ns)
    recovery = recovery_seconds(qos, component, held, at_ns)
    return {
        "kind": event["kind"],
        "time": event["time"],
        "t_s": round((at_ns - origin_ns) / 1e9, 3) if origin_ns is not None else None,
        "component": component,
        "partitions": held,
        "recovered": recovery is not None,
        "recovery_s": None if recovery is None else round(recovery, 3),
    }


def held_partitions(qos: Qos, worker: str | None, before_ns: int) -> list[int]:
    """Partitions of the worker's completions before `before_ns`."""
    if not qos or worker is None:
        return []
    mask = (qos["worker"] == worker) & (qos["done_ns"] < before_ns)
    return sorted(int(p) for p in np.unique(qos["partition"][mask]))


def recovery_seconds(
    qos: Qos, worker: str | None, partitions: list[int], at_ns: int
) -> float | None:
    """Seconds from the kill until each partition had a completion by another worker."""
    if not qos or not partitions:
        return None
    others = (qos["worker"] != worker) & (qos["done_ns"] >= at_ns)
    latest = at_ns
    for partition in partitions:
        done = qos["done_ns"][others & (qos["partition"] == partition)]
        if done.size == 0:
            return None
        latest = max(latest, int(done.min()))
    return (latest - at_ns) / 1e9
