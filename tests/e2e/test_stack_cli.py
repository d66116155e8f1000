"""`up`, `status`, `down`, `reset` and Ctrl-C through the real CLI, checked by pid."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from scalelab.platform.process import wait_until

from .cli import REPO, alive, recorded_pids, run_json, runs, scalelab, spawn

pytestmark = pytest.mark.e2e
QUICKSTART = str(REPO / "examples" / "quickstart.yaml")


def test_up_status_down_leave_no_process_behind() -> None:
    up = scalelab("up", QUICKSTART)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "bootstrap" in up.stdout and "prometheus" in up.stdout
    assert "dashboard    http://127.0.0.1:" in up.stdout
    pids = recorded_pids()
    assert set(pids) == {"broker", "prometheus", "node-exporter", "dashboard"}
    assert all(alive(pid) for pid in pids.values())
    status = scalelab("status")
    assert status.returncode == 0 and "broker" in status.stdout and "running" in status.stdout
    down = scalelab("down")
    assert down.returncode == 0, down.stderr
    assert not any(alive(pid) for pid in pids.values())
    assert recorded_pids() == {}
    record = run_json(runs()[-1])
    assert record["status"] == "succeeded"
    assert [p["name"] for p in record["phases"]] == ["setup", "teardown"]  # type: ignore[attr-defined]
    listed = scalelab("ls")
    assert listed.returncode == 0 and str(record["id"]) in listed.stdout
    assert "succeeded" in listed.stdout


def test_reset_removes_what_an_earlier_stack_left() -> None:
    assert scalelab("up", QUICKSTART).returncode == 0
    pids = recorded_pids()
    reset = scalelab("reset")
    assert reset.returncode == 0, reset.stderr
    assert not any(alive(pid) for pid in pids.values())
    assert recorded_pids() == {}
    assert run_json(runs()[-1])["status"] == "aborted"
    assert "nothing is running" in scalelab("status").stdout


def test_ctrl_c_during_up_tears_down_and_records_abort() -> None:
    before = set(runs())
    proc = spawn("up", QUICKSTART)
    assert wait_until(lambda: "broker" in recorded_pids(), 60), "the broker never started"
    pids = recorded_pids()
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    assert proc.returncode != 0
    assert wait_until(lambda: not any(alive(pid) for pid in pids.values()), 30)
    assert recorded_pids() == {}
    (new_run,) = set(runs()) - before
    record = run_json(new_run)
    assert record["status"] == "aborted"
    assert [p["name"] for p in record["phases"]][-1] == "teardown"  # type: ignore[attr-defined]


def test_bad_spec_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: demo\nload:\n  profile: constant\n  rate: 0\n  burst: 3\n")
    before = set(runs())
    result = scalelab("run", str(spec))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert f"{spec}:4: load.rate: Input should be greater than 0" in lines[0]
    assert f"{spec}:5: load.burst: unknown key" in lines[1]
    assert set(runs()) == before and recorded_pids() == {}


def test_fixed_port_taken_is_a_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = scalelab("up", QUICKSTART, "--set", f"platform.ports.prometheus={port}")
    assert result.returncode != 0
    assert f"prometheus: port {port} on 127.0.0.1 is already in use" in result.stderr
    time.sleep(0.5)
    assert recorded_pids() == {}


def test_reset_works_when_the_run_dir_is_gone() -> None:
    import shutil

    assert scalelab("up", QUICKSTART).returncode == 0
    pids = recorded_pids()
    shutil.rmtree(runs()[-1])
    reset = scalelab("reset")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert "clean" in reset.stdout
    assert not any(alive(pid) for pid in pids.values())
    assert recorded_pids() == {}
    assert "nothing is running" in scalelab("status").stdout


def test_run_reuses_the_stack_up_started_and_leaves_it_running() -> None:
    up = scalelab("up", QUICKSTART)
    assert up.returncode == 0, up.stdout + up.stderr
    stack = recorded_pids()
    stack_run = runs()[-1]
    try:
        result = scalelab(
            "run", QUICKSTART, "--set", "load.duration=15s", "--set", "load.warmup=3s", timeout=600
        )
        assert result.returncode == 0, result.stdout + result.stderr
        run_dir = runs()[-1]
        record = run_json(run_dir)
        assert record["status"] == "succeeded"
        assert record["results"]["stack"] == {"run_id": stack_run.name, "reused": True}  # type: ignore[index]
        assert [e["kind"] for e in record["events"]].count("stack") == 1  # type: ignore[attr-defined]
        assert recorded_pids() == stack  # the same broker, Prometheus and node exporter ...
        assert all(alive(pid) for pid in stack.values())  # ... still running
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["accounting"]["lost"] == 0 and summary["throughput"] > 0
        assert "broker" in summary["cpu"]  # the stack's series count for the run
        targets = json.loads((stack_run / "config" / "targets.json").read_text())
        scraped = set(stack) - {"dashboard"}  # the stack's live page is not a scrape target
        assert {g["labels"]["component"] for g in targets} == scraped  # the run's are gone
        again = scalelab("run", QUICKSTART, "--set", "load.duration=5s", "--set", "load.warmup=1s")
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        down = scalelab("down")
    assert down.returncode == 0 and not any(alive(pid) for pid in stack.values())
