"""Where scalelab keeps things: runs, state (pid files, kept data) and the Kafka jars.

Everything is relative to the current directory unless overridden by the
environment, so two checkouts (or a test session) never share state.
"""

from __future__ import annotations

import os
from pathlib import Path

import scalelab

PROJECT_ROOT = Path(scalelab.__file__).resolve().parents[2]


def runs_dir() -> Path:
    return Path(os.environ.get("SCALELAB_RUNS", "runs")).resolve()


def state_dir() -> Path:
    return Path(os.environ.get("SCALELAB_HOME", ".scalelab")).resolve()


def pid_dir() -> Path:
    return state_dir() / "pids"


def kafka_lib_dir() -> Path:
    return Path(os.environ.get("SCALELAB_KAFKA_LIB", PROJECT_ROOT / "kafka" / "lib"))


def models_dir() -> Path:
    return Path(os.environ.get("SCALELAB_MODELS", state_dir() / "models"))
