"""Where scalelab keeps things: runs, state (pid files, kept data) and the Kafka jars.

Runs and state live in the project root: the nearest directory, from the
current one upward, that holds `.scalelab/` or `runs/` or a `pyproject.toml`
(else the current directory). So `scalelab ls` or `scalelab report latest`
work from any subdirectory of a project, and two checkouts never share state.
`SCALELAB_RUNS` and `SCALELAB_HOME` override the two directories (tests and
benchmarks set them to temporary ones).
"""

from __future__ import annotations

import os
from pathlib import Path

import scalelab

PROJECT_ROOT = Path(scalelab.__file__).resolve().parents[2]


PROJECT_MARKERS = (".scalelab", "runs", "pyproject.toml")


def project_root(start: Path | None = None) -> Path:
    """The nearest directory from `start` (default: the current one) upward holding a marker."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if any((directory / marker).exists() for marker in PROJECT_MARKERS):
            return directory
    return here


def runs_dir() -> Path:
    override = os.environ.get("SCALELAB_RUNS")
    return Path(override).resolve() if override else project_root() / "runs"


def state_dir() -> Path:
    override = os.environ.get("SCALELAB_HOME")
    return Path(override).resolve() if override else project_root() / ".scalelab"


def pid_dir() -> Path:
    return state_dir() / "pids"


def kafka_lib_dir() -> Path:
    return Path(os.environ.get("SCALELAB_KAFKA_LIB", PROJECT_ROOT / "kafka" / "lib"))


def models_dir() -> Path:
    return Path(os.environ.get("SCALELAB_MODELS", state_dir() / "models"))
