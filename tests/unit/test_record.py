"""The run record: ids, phase windows written even on failure, round trip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scalelab.run.record import RunRecord, new_run_id, parse_rfc3339


def test_run_id_is_utc_stamp_name_and_hash() -> None:
    run_id = new_run_id("quickstart", "spec")
    assert re.fullmatch(r"\d{8}T\d{6}Z-quickstart-[0-9a-f]{6}", run_id)
    assert new_run_id("quickstart", "spec") != new_run_id("quickstart", "other")


def test_phase_window_is_closed_when_the_phase_raises(tmp_path: Path) -> None:
    record = RunRecord(id="r", name="n")
    with pytest.raises(RuntimeError), record.phase("load"):
        raise RuntimeError("boom")
    window = record.window("load")
    assert window is not None and window[0] <= window[1]
    assert record.phases[0].end.endswith("Z")


def test_write_and_read_back(tmp_path: Path) -> None:
    record = RunRecord(id="r", name="n")
    with record.phase("setup"):
        pass
    record.add_error("ComponentError", "broker died", "broker")
    record.finish("failed")
    record.write(tmp_path)
    again = RunRecord.read(tmp_path)
    assert again.status == "failed"
    assert again.errors == [
        {"kind": "ComponentError", "message": "broker died", "component": "broker"}
    ]
    assert parse_rfc3339(again.ended or "").tzinfo is not None
