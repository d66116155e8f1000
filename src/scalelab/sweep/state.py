"""A sweep on disk: `<sweeps>/<id>/sweep.json`, the grid and every cell's run and status.

The id is derived from the resolved spec and the grid, so running the same
sweep again finds the same directory and skips the cells that finished.
sweep.json is replaced atomically after every change: a sweep killed at any
moment leaves a readable file whose `running` cell is simply run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scalelab import paths
from scalelab.errors import ConfigError
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec
from scalelab.sweep.grid import Cell

SWEEP_FILE = "sweep.json"
DONE = "succeeded"
"""The one status a resumed sweep does not run again (failed and aborted runs are retried)."""


def sweeps_dir() -> Path:
    """Where sweeps live: `$SCALELAB_SWEEPS`, else `sweeps/` inside the runs directory."""
    return Path(os.environ.get("SCALELAB_SWEEPS", paths.runs_dir() / "sweeps")).resolve()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def spec_digest(spec: ExperimentSpec) -> str:
    """SHA-256 of the resolved spec without its `sweep:` section (the grid is hashed apart)."""
    return hashlib.sha256(dump_spec(spec.model_copy(update={"sweep": None})).encode()).hexdigest()


def sweep_id(kind: str, spec: ExperimentSpec, vary: dict[str, list[str]]) -> str:
    """`<name>-<kind>-<hash>`: the same spec and grid give the same id, hence the same dir."""
    grid = json.dumps({"kind": kind, "spec": spec_digest(spec), "vary": vary}, sort_keys=True)
    return f"{spec.name}-{kind}-{hashlib.sha256(grid.encode()).hexdigest()[:10]}"


@dataclass
class SweepState:
    """sweep.json in memory; `save()` writes it whole."""

    dir: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, sweep_dir: Path, header: dict[str, Any]) -> SweepState:
        """The sweep in `sweep_dir`, created with `header` when new; the header is refreshed."""
        path = sweep_dir / SWEEP_FILE
        data: dict[str, Any] = {"runs": {}, "created": now()}
        if path.is_file():
            data = read_sweep(sweep_dir)
        data.update(header)
        state = cls(sweep_dir, data)
        state.save()
        return state

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.setdefault("runs", {}))

    def entry(self, cell: Cell) -> dict[str, Any]:
        return dict(self.data.setdefault("runs", {}).get(cell.key) or {})

    def done(self, cell: Cell) -> bool:
        return self.entry(cell).get("status") == DONE

    def update(self, cell: Cell, **values: Any) -> None:
        entry = self.data.setdefault("runs", {}).setdefault(
            cell.key,
            {"config": cell.config, "params": dict(cell.params), "repetition": cell.repetition},
        )
        entry.update(values)
        self.save()

    def save(self) -> None:
        self.data["updated"] = now()
        self.dir.mkdir(parents=True, exist_ok=True)
        temporary = self.dir / f".{SWEEP_FILE}.{os.getpid()}"
        temporary.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        os.replace(temporary, self.dir / SWEEP_FILE)


def read_sweep(sweep_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((sweep_dir / SWEEP_FILE).read_text()))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {sweep_dir / SWEEP_FILE}: {error}") from error


def resolve_sweep(sweep: str | Path) -> Path:
    """A sweep's directory from its id or path; ConfigError listing the known ids if none."""
    candidate = Path(sweep)
    if (candidate / SWEEP_FILE).is_file():
        return candidate.resolve()
    by_id = sweeps_dir() / str(sweep)
    if (by_id / SWEEP_FILE).is_file():
        return by_id
    known = sorted(p.parent.name for p in sweeps_dir().glob(f"*/{SWEEP_FILE}"))
    hint = f"; known: {', '.join(known[-5:])}" if known else " (no sweeps there yet)"
    raise ConfigError(f"no sweep {str(sweep)!r} in {sweeps_dir()}{hint}")
