"""The real Kafka broker and Prometheus, started once per test session on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scalelab.platform.base import Endpoints
from scalelab.platform.local.platform import LocalPlatform
from scalelab.spec.models import ExperimentSpec


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    spec = ExperimentSpec.model_validate(
        {"name": "itest", "load": {"profile": "constant", "rate": 1}}
    )
    run_dir = tmp_path_factory.mktemp("itest-run")
    state = tmp_path_factory.mktemp("itest-state")  # its own Prometheus data and pid files
    platform = LocalPlatform(spec, "itest", run_dir, state, detached=False)
    try:
        platform.start_infrastructure()
        yield platform
    finally:
        platform.teardown()


@pytest.fixture(scope="session")
def endpoints(local_stack: LocalPlatform) -> Endpoints:
    assert local_stack.endpoints is not None
    return local_stack.endpoints
