"""What a `cluster` test does when the cluster or the image is not there.

A plain `pytest` skips it, saying what to run. `make test`'s cluster phase sets
SCALELAB_REQUIRE_CLUSTER=1 after bringing both up, and there a missing part is a
failure: a cluster phase that did not really run cannot pass.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip for want of the cluster or the image, or fail where they are required."""
    if os.environ.get("SCALELAB_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"{reason}; make test's cluster phase requires it", pytrace=False)
    pytest.skip(reason)
