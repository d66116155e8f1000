"""Runs named as people name them, and `ls`/`rm` as scripts use them (real run directories)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalelab.analysis.lookup import find_run, match_id
from scalelab.analysis.synthetic import Synthetic, write_run
from scalelab.cli.main import app
from scalelab.errors import ConfigError

IDS = [
    "20260913T100000Z-quick-start-aaaaaa",
    "20260913T110000Z-quick-start-bbbbbb",
    "20260914T090000Z-other-cccccc",
]


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for run_id in IDS:
        write_run(tmp_path / run_id, Synthetic(run_id=run_id, load_s=6))
    monkeypatch.setenv("SCALELAB_RUNS", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latest", IDS[2]),
        ("latest~1", IDS[1]),
        ("20260913T10", IDS[0]),
        ("bbbbbb", IDS[1]),
        ("quick-start", IDS[1]),
        ("other", IDS[2]),
        (IDS[0], IDS[0]),
    ],
)
def test_a_run_is_found_by_latest_prefix_hash_and_name(text: str, expected: str) -> None:
    assert match_id(text, IDS) == expected


def test_an_ambiguous_prefix_names_the_candidates() -> None:
    with pytest.raises(ConfigError, match="matches 2 runs") as caught:
        match_id("20260913T", IDS)
    assert IDS[0] in str(caught.value) and IDS[1] in str(caught.value)


def test_latest_beyond_the_runs_and_no_match_are_errors(runs: Path) -> None:
    with pytest.raises(ConfigError, match="there are 3 runs"):
        match_id("latest~3", IDS)
    with pytest.raises(ConfigError, match="no run 'nothing-like-it'"):
        find_run("nothing-like-it")
    assert find_run("latest") == runs / IDS[2]


def test_ls_json_gives_full_ids_statuses_and_verdicts(runs: Path) -> None:
    result = CliRunner().invoke(app, ["ls", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == IDS
    assert {r["status"] for r in rows} == {"succeeded"}
    assert rows[0]["name"] == "synthetic" and rows[0]["dir"] == str(runs / IDS[0])


def test_ls_piped_prints_one_full_line_per_run(runs: Path) -> None:
    result = CliRunner().invoke(app, ["ls"], env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["id", "status", "verdict"]
    assert [line.split("\t")[0] for line in lines[1:]] == IDS


def test_rm_deletes_the_named_run_only_with_yes(runs: Path) -> None:
    refused = CliRunner().invoke(app, ["rm", "other"])
    assert refused.exit_code == 2 and (runs / IDS[2]).is_dir()
    done = CliRunner().invoke(app, ["rm", "other", "--yes"])
    assert done.exit_code == 0, done.output
    assert not (runs / IDS[2]).exists() and (runs / IDS[1]).is_dir()
    assert json.loads(CliRunner().invoke(app, ["ls", "--json"]).stdout)[-1]["id"] == IDS[1]


def test_rm_refuses_a_running_run(runs: Path) -> None:
    record = json.loads((runs / IDS[0] / "run.json").read_text())
    (runs / IDS[0] / "run.json").write_text(json.dumps({**record, "status": "running"}))
    result = CliRunner().invoke(app, ["rm", IDS[0], "--yes"])
    assert result.exit_code == 2 and "still running" in result.output
    assert (runs / IDS[0]).is_dir()
