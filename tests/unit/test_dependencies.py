"""Missing programs and jars are named together with the command that installs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.errors import MissingDependencyError
from scalelab.platform.local import kafka, prometheus


def test_missing_jars_name_make_kafka(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALELAB_KAFKA_LIB", str(tmp_path))
    with pytest.raises(MissingDependencyError) as caught:
        kafka.kafka_jars()
    assert str(tmp_path) in caught.value.what
    assert "make kafka" in caught.value.install_hint


def test_missing_prometheus_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingDependencyError) as caught:
        prometheus.find_binary(prometheus.PROMETHEUS_CANDIDATES, "prometheus")
    assert "make prometheus" in caught.value.install_hint
    assert "apt-get install prometheus" in caught.value.install_hint


def test_missing_java_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingDependencyError) as caught:
        kafka.java_binary()
    assert "openjdk" in caught.value.install_hint
