"""Test isolation: every test session gets its own runs/, state and model directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session", autouse=True)
def isolated_scalelab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Point scalelab's runs, state and models at temporary directories for the session."""
    root = tmp_path_factory.mktemp("scalelab")
    env = {
        "SCALELAB_RUNS": str(root / "runs"),
        "SCALELAB_HOME": str(root / "state"),
        "SCALELAB_MODELS": str(root / "models"),
    }
    os.environ.update(env)
    return env
