"""A second signal abandons a stuck teardown only where nothing of the run is left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalelab.errors import ComponentError
from scalelab.run import session
from scalelab.run.session import Interrupts
from scalelab.spec.models import ExperimentSpec


class Exited(Exception):
    """Stands for os._exit, which would end the test process."""


@pytest.fixture
def quick_exit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    abandoned: list[str] = []
    monkeypatch.setattr(session, "FORCED_EXIT_S", 0.05)

    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(session.os, "_exit", exit_)
    return abandoned


def interrupts(stopped: bool, abandoned: list[str]) -> Interrupts:
    watch = Interrupts()
    watch.on_force.append(lambda: stopped)
    watch.on_abandon.append(lambda: abandoned.append("record closed"))
    return watch


def test_a_stuck_local_teardown_is_abandoned_once_every_process_is_dead(
    quick_exit: list[str],
) -> None:
    with pytest.raises(Exited):
        interrupts(True, quick_exit)._force()
    assert quick_exit == ["record closed"]


def test_a_teardown_that_still_has_objects_to_delete_is_never_abandoned(
    quick_exit: list[str],
) -> None:
    watch = interrupts(False, quick_exit)
    watch._force()  # returns: the teardown goes on however long it takes
    assert watch.forced.is_set() and quick_exit == []


def test_a_failing_kill_counts_as_something_left(quick_exit: list[str]) -> None:
    watch = Interrupts()

    def broken() -> bool:
        raise RuntimeError("cannot reach the cluster")

    watch.on_force.append(broken)
    watch._force()
    assert watch.forced.is_set()


def test_ctrl_c_while_a_failed_run_cleans_up_keeps_the_failure_on_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCALELAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SCALELAB_HOME", str(tmp_path / "state"))
    spec = ExperimentSpec.model_validate({"name": "t", "load": {"profile": "constant", "rate": 1}})
    run = session.RunSession(spec, None)
    try:
        try:
            raise ComponentError("broker", "exited with code -9")
        except ComponentError:
            raise KeyboardInterrupt  # noqa: B904 - Ctrl-C arriving while the failure is handled
    except KeyboardInterrupt as interrupt:
        run._record_outcome(interrupt)
    assert [(e["kind"], e.get("component")) for e in run.record.errors] == [
        ("ComponentError", "broker"),
        ("aborted", None),
    ]
    assert run.record.status == "aborted"


def test_ctrl_c_as_the_run_begins_closes_its_record_aborted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A sweep saw a run stay `running` (and went on) when Ctrl-C came while the session
    was being entered: `with` never calls __exit__ when __enter__ raises."""
    monkeypatch.setenv("SCALELAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SCALELAB_HOME", str(tmp_path / "state"))
    spec = ExperimentSpec.model_validate({"name": "t", "load": {"profile": "constant", "rate": 1}})
    run = session.RunSession(spec, None)

    def interrupted() -> dict[str, str]:
        raise KeyboardInterrupt  # where the signal landed in the CI run: reading the host

    monkeypatch.setattr(session, "host_info", interrupted)
    with pytest.raises(KeyboardInterrupt), run:
        pytest.fail("the run must not start")
    assert run.record.status == "aborted"
    on_disk = json.loads((run.dir / "run.json").read_text())
    assert on_disk["status"] == "aborted" and on_disk["ended"]
