"""The real broker and Prometheus for the autoscaler's tests, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scalelab.platform.local.platform import LocalPlatform
from scalelab.spec.models import ExperimentSpec


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    spec = ExperimentSpec.model_validate(
        {"name": "astest", "load": {"profile": "constant", "rate": 1}}
    )
    run_dir = tmp_path_factory.mktemp("astest-run")
    state = tmp_path_factory.mktemp("astest-state")
    platform = LocalPlatform(spec, "astest", run_dir, state, detached=False)
    try:
        platform.start_infrastructure()
        yield platform
    finally:
        platform.teardown()
