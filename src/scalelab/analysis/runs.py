"""Find runs on disk: a run id under `runs_dir()`, or a path to a run directory.

Every command that takes a run id resolves it here, so an unknown id gives the
same error everywhere: exit 2 and the closest ids that do exist.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from scalelab import paths
from scalelab.errors import ConfigError

RUN_FILE = "run.json"


def run_ids(root: Path | None = None) -> list[str]:
    """Ids of the runs under `root` (default `runs_dir()`), oldest first."""
    root = root or paths.runs_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{RUN_FILE}"))


def resolve_run(run: str | Path, root: Path | None = None) -> Path:
    """The directory of a run given by id or by path; ConfigError naming close ids if none."""
    candidate = Path(run)
    if (candidate / RUN_FILE).is_file():
        return candidate.resolve()
    root = root or paths.runs_dir()
    by_id = root / str(run)
    if (by_id / RUN_FILE).is_file():
        return by_id
    raise ConfigError(_unknown_message(str(run), root))


def resolve_runs(runs: list[str] | list[Path], root: Path | None = None) -> list[Path]:
    return [resolve_run(run, root) for run in runs]


def _unknown_message(run: str, root: Path) -> str:
    known = run_ids(root)
    close = _closest(run, known)
    message = f"no run {run!r} in {root}"
    if close:
        return f"{message}; did you mean: {', '.join(close)}?"
    if known:
        return f"{message}; `scalelab ls` lists the {len(known)} runs there"
    return f"{message} (no runs there yet)"


def _closest(run: str, known: list[str]) -> list[str]:
    """Close ids by spelling, and ids that contain what was typed (a name or a hash)."""
    close = difflib.get_close_matches(run, known, n=3, cutoff=0.5)
    partial = [k for k in known if run and run in k and k not in close]
    return (close + partial)[:3]
