"""The real Kafka broker and Prometheus, started once per test session on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scalelab import paths
from scalelab.platform.base import Endpoints
from scalelab.platform.local.platform import LocalPlatform
from scalelab.spec.models import ExperimentSpec


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    spec = ExperimentSpec.model_validate(
        {"name": "itest", "load": {"profile": "constant", "rate": 1}}
    )
    run_dir = tmp_path_factory.mktemp("itest-run")
    platform = LocalPlatform(spec, "itest", run_dir, paths.state_dir(), detached=False)
    try:
        platform.start_infrastructure()
        yield platform
    finally:
        platform.teardown()


@pytest.fixture(scope="session")
def endpoints(local_stack: LocalPlatform) -> Endpoints:
    assert local_stack.endpoints is not None
    return local_stack.endpoints


def logs_of(platform: LocalPlatform) -> Path:
    return platform.logs
