"""What a sweep will run: the base spec, the grid, each cell's checked spec, the sweep's id.

Every cell's spec is loaded through `load_spec` with the cell's values as
`--set` overrides before the first run starts, so a bad value stops the
sweep at once with the same file/field error `scalelab run --set` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.spec.loader import load_spec
from scalelab.spec.models import ExperimentSpec
from scalelab.sweep.grid import Cell, expand, merge, parse_vary, run_order, section_values
from scalelab.sweep.state import spec_digest, sweep_id, sweeps_dir
from scalelab.sweep.stats import METHOD


@dataclass
class Plan:
    kind: str
    spec_path: Path
    base: ExperimentSpec
    overrides: list[str]
    vary: dict[str, list[str]]
    repetitions: int
    seed: int
    specs: dict[str, ExperimentSpec] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return sweep_id(self.kind, self.base, self.vary)

    @property
    def dir(self) -> Path:
        return sweeps_dir() / self.id

    @property
    def params(self) -> list[str]:
        return list(self.vary)

    def cells(self) -> list[Cell]:
        """Every run of the sweep in its seeded random order."""
        return run_order(expand(self.vary, self.repetitions), self.seed)

    def spec_for(self, cell: Cell) -> ExperimentSpec:
        """The cell's spec (loaded and checked once per configuration)."""
        if cell.config not in self.specs:
            self.specs[cell.config] = load_spec(
                self.spec_path, [*self.overrides, *cell.overrides()]
            )
        return self.specs[cell.config]

    def header(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.base.name,
            "spec": str(self.spec_path),
            "spec_sha256": spec_digest(self.base),
            "overrides": self.overrides,
            "vary": self.vary,
            "repetitions": self.repetitions,
            "seed": self.seed,
            "ci_method": METHOD,
        }


def plan_sweep(
    spec_path: Path,
    overrides: Sequence[str],
    vary: Sequence[str],
    repetitions: int | None = None,
    seed: int | None = None,
    kind: str = "sweep",
) -> Plan:
    """The sweep of `spec_path` (+ `--set`), its `sweep:` section merged with `--vary`."""
    base = load_spec(spec_path, list(overrides))
    section = base.sweep if kind == "sweep" else None  # a capacity search varies only its level
    grid = merge(section_values(section.vary) if section else {}, parse_vary(vary))
    reps = repetitions or (section.repetitions if section else None) or base.repetitions
    chosen_seed = seed if seed is not None else (section.seed if section else 0)
    plan = Plan(kind, spec_path, base, list(overrides), grid, reps, chosen_seed)
    for cell in plan.cells():
        plan.spec_for(cell)
    return plan
