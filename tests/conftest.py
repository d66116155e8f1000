"""Test isolation: every test session gets its own runs/, state and model directories.

Tests that need the real single-node cluster (`make cluster`) or the component image
(`make image`) are marked `cluster`: `make test` runs the others first, then brings the
cluster up and runs these (mk/test-cluster.sh). There, SCALELAB_REQUIRE_CLUSTER=1 turns
"no cluster" or "no image" from a skip into a failure, so a cluster phase that did not
really run cannot pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
TESTS = Path(__file__).resolve().parent
NEEDS_CLUSTER = (
    TESTS / "cluster",
    TESTS / "image",
    TESTS / "localcluster" / "test_localcluster_live.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the real cluster or the image, by where it lives."""
    for item in items:
        path = Path(str(item.path))
        if any(path == root or root in path.parents for root in NEEDS_CLUSTER):
            item.add_marker(pytest.mark.cluster)


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
