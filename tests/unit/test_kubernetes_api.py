"""Connecting to a cluster that is not there fails clearly, before anything is applied."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from scalelab.platform.kubernetes.api import connect  # noqa: E402
from scalelab.platform.kubernetes.errors import ClusterUnreachableError  # noqa: E402

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: dead, cluster: {server: "{server}", insecure-skip-tls-verify: true}}]
users: [{name: me, user: {token: x}}]
contexts: [{name: dead, context: {cluster: dead, user: me}}]
current-context: dead
"""


def test_connect_without_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnreachableError, match="Nothing was applied"):
        connect(str(tmp_path / "missing"), None)


def test_connect_to_a_cluster_that_does_not_answer(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG.replace("{server}", "https://127.0.0.1:9"))
    with pytest.raises(ClusterUnreachableError) as caught:
        connect(str(config), "dead", timeout=2)
    assert caught.value.server == "https://127.0.0.1:9"
