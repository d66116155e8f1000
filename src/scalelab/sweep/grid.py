"""The grid of a sweep: `--vary` values, their combinations (cells), and a seeded run order.

A value is kept as the YAML text a `--set` would take (`"4"`, `"10s"`), so
each cell's spec is loaded through the same override path as `scalelab run
--set`, with the same errors for a bad value.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scalelab.errors import SpecError, SpecProblem
from scalelab.spec.sweep import MAX_CELLS

VARY_SOURCE = "--vary"
_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?:\.\.\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class Cell:
    """One combination of the varied fields, one repetition of it: one run."""

    params: tuple[tuple[str, str], ...]
    repetition: int = 1

    @property
    def key(self) -> str:
        """Stable name of the cell in sweep.json, e.g. `workload.workers=2,load.rate=8#1`."""
        return ",".join(f"{k}={v}" for k, v in self.params) + f"#{self.repetition}"

    @property
    def config(self) -> str:
        """The combination without the repetition (what repetitions are grouped by)."""
        return ",".join(f"{k}={v}" for k, v in self.params)

    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.params]


def parse_vary(items: Iterable[str]) -> dict[str, list[str]]:
    """`key=v1,v2` or `key=a..b[..step]` (integers) → {key: [value texts]}; repeated keys add."""
    vary: dict[str, list[str]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            message = "expects key.path=v1,v2,... or key.path=a..b"
            raise SpecError([SpecProblem(item, message, VARY_SOURCE)])
        vary.setdefault(key, []).extend(_values(key, raw))
    return vary


def _values(key: str, raw: str) -> list[str]:
    match = _RANGE.match(raw)
    if not match:
        return [v.strip() for v in raw.split(",") if v.strip()]
    start, end, step = int(match[1]), int(match[2]), int(match[3] or 1)
    if end < start or step < 1 or (end - start) // step >= MAX_CELLS:
        message = f"range {raw!r} must go upwards in positive steps, at most {MAX_CELLS} values"
        raise SpecError([SpecProblem(key, message, VARY_SOURCE)])
    return [str(v) for v in range(start, end + 1, step)]


def section_values(vary: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
    """The spec's `sweep.vary` values as `--set` texts (JSON is YAML, so lists and maps pass)."""
    return {key: [_text(v) for v in values] for key, values in vary.items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def merge(section: Mapping[str, list[str]], command_line: Mapping[str, list[str]]) -> dict:
    """The command line's values for a field replace the section's; other fields stay."""
    merged = {**section, **command_line}
    return {key: list(dict.fromkeys(values)) for key, values in merged.items()}


def expand(vary: Mapping[str, list[str]], repetitions: int) -> list[Cell]:
    """Every combination × repetition, in grid order (first field slowest)."""
    keys = list(vary)
    combos = list(itertools.product(*(vary[k] for k in keys))) if keys else [()]
    if len(combos) * repetitions > MAX_CELLS:
        count = len(combos) * repetitions
        message = f"{count} runs, more than the {MAX_CELLS} a sweep may hold"
        raise SpecError([SpecProblem("sweep", message, VARY_SOURCE)])
    return [
        Cell(tuple(zip(keys, combo, strict=True)), rep)
        for combo in combos
        for rep in range(1, repetitions + 1)
    ]


def run_order(cells: Sequence[Cell], seed: int) -> list[Cell]:
    """The cells shuffled with `seed`: the same seed always gives the same order."""
    order = list(cells)
    random.Random(seed).shuffle(order)
    return order
