"""The real single-node cluster (`make cluster`), or a skip that says why there is none.

Every test here talks to the cluster's API server: nothing is faked. A test
that needs the component image skips when the node's containerd does not
hold it (`make image`). Each test gets its own namespace and run id, and
deletes what it made by the run's label, so tests never see each other.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from needs_cluster import missing
from scalelab import __version__

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
EXAMPLE = REPO / "examples" / "kubernetes.yaml"
IMAGE = f"scalelab.local/scalelab:{__version__}"
IMAGE_LISTED_WITHIN_S = 30.0


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@pytest.fixture(scope="session")
def cluster() -> Any:
    """A client of the project's own cluster; skips when it is not up."""
    if not KUBECONFIG.is_file():
        missing(f"no cluster: {KUBECONFIG} does not exist (run `make cluster`)")
    pytest.importorskip("kubernetes")
    from scalelab.platform.kubernetes.api import connect
    from scalelab.platform.kubernetes.errors import ClusterUnreachableError

    try:
        found = connect(str(KUBECONFIG), None)
    except ClusterUnreachableError as error:
        missing(f"no cluster: {error}")
    nodes = found.list("v1", "Node", None, "")
    if not any(_ready(node) for node in nodes):
        missing(f"no cluster: no node is Ready ({[n['metadata']['name'] for n in nodes]})")
    return found


@pytest.fixture(scope="session")
def image(cluster: Any) -> str:
    """The component image, as the node's containerd holds it.

    The kubelet lists a new image in the node's status at its next status update (every
    10 s), so an image imported just before the tests is waited for, that long and a bit.
    """
    deadline = time.monotonic() + IMAGE_LISTED_WITHIN_S
    while IMAGE not in _node_images(cluster):
        if time.monotonic() > deadline:
            missing(f"the node has no {IMAGE} (run `make image`)")
        time.sleep(1.0)
    return IMAGE


def _node_images(cluster: Any) -> set[str]:
    return {
        name
        for node in cluster.list("v1", "Node", None, "")
        for held in (node.get("status") or {}).get("images", [])
        for name in held.get("names") or []
    }


@pytest.fixture
def run_id() -> str:
    return f"test-{secrets.token_hex(4)}"


@pytest.fixture
def namespace(cluster: Any, run_id: str) -> Iterator[str]:
    """A namespace of this test's run; everything labelled with the run is deleted after."""
    from scalelab.platform.kubernetes import teardown

    name = f"scalelab-t-{secrets.token_hex(3)}"
    yield name
    teardown.delete_run(cluster, name, run_id, timeout=120)
