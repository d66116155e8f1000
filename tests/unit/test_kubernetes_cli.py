"""`scalelab render` and `scalelab cluster ...` as a user calls them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scalelab.cli import cluster_cmd, render_cmd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def cli() -> typer.Typer:
    """The two commands as `cli/main.py` registers them."""
    app = typer.Typer()
    app.command()(render_cmd.render)
    app.add_typer(cluster_cmd.app, name="cluster")
    return app


def test_render_writes_the_manifests(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "render",
            str(EXAMPLES / "quickstart.yaml"),
            "--platform",
            "kubernetes",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in tmp_path.glob("*.yaml"))
    assert files[0].startswith("00-namespace-") and any("job-producer" in f for f in files)
    assert f"rendered {len(files)} manifests" in result.output


def test_render_knows_only_kubernetes(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["render", str(EXAMPLES / "quickstart.yaml"), "--platform", "local", "-o", str(tmp_path)],
    )
    assert result.exit_code == 2 and "only kubernetes" in result.output


def test_render_reports_what_cannot_run_on_a_cluster(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "render",
            str(EXAMPLES / "quickstart.yaml"),
            "-o",
            str(tmp_path),
            "--set",
            "workload.model=/tmp/mine.onnx",
        ],
    )
    assert result.exit_code == 2 and "model_path" in result.output


def test_monitoring_dry_run(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "cluster",
            "monitoring",
            "install",
            "--dry-run",
            "-o",
            str(tmp_path),
            "--spec",
            str(EXAMPLES / "kubernetes.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "install.sh").exists() and "would run: helm upgrade" in result.output


def test_monitoring_install_without_helm(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(cli, ["cluster", "monitoring", "install", "-o", str(tmp_path)])
    assert result.exit_code == 3
    assert "helm is missing" in result.output and "helm.sh" in result.output


def test_cluster_commands_without_a_cluster(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("kubernetes")
    result = CliRunner().invoke(cli, ["cluster", "clean", "--kubeconfig", str(tmp_path / "none")])
    assert result.exit_code == 4 and "no Kubernetes cluster reachable" in result.output
