"""One run's lifetime: run directory, record, platform, and a teardown that always happens.

`RunSession` is a context manager. Leaving it normally marks the run
succeeded; a ScalelabError marks it failed with the error's data; Ctrl-C
(or SIGTERM) marks it aborted. Whatever happens, everything started is torn
down (unless the stack was brought up to stay, with `scalelab up`) and
run.json is written in the `finally`.
"""

from __future__ import annotations

import json
import signal
import traceback
from pathlib import Path
from types import FrameType, TracebackType

from scalelab import paths
from scalelab.errors import ComponentError, ScalelabError
from scalelab.platform.base import Endpoints
from scalelab.platform.registry import make_platform
from scalelab.run.record import RunRecord, base_versions, git_commit, host_info, new_run_id
from scalelab.run.stack import STACK_FILE, pid_files
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec


class RunSession:
    def __init__(self, spec: ExperimentSpec, spec_path: Path | None, detached: bool = False):
        self.spec = spec
        self.resolved = dump_spec(spec)
        self.id = new_run_id(spec.name, self.resolved)
        self.dir = paths.runs_dir() / self.id
        self.detached = detached
        self.record = RunRecord(id=self.id, name=spec.name, platform=spec.platform.kind)
        self.record.spec_path = str(spec_path) if spec_path else None
        self.platform = make_platform(spec, self.id, self.dir, paths.state_dir(), detached)
        self.endpoints: Endpoints | None = None
        self.keep_running = False

    def __enter__(self) -> RunSession:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "spec.yaml").write_text(self.resolved)
        self.record.host = host_info()
        self.record.versions = base_versions()
        if self.spec.base_dir:
            self.record.git_commit = git_commit(self.spec.base_dir)
        self.save()
        self._previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        return self

    def save(self) -> None:
        self.record.write(self.dir)

    def start_stack(self) -> Endpoints:
        refuse_if_running()
        with self.record.phase("setup", self.save):
            self.endpoints = self.platform.start_infrastructure()
        self.record.endpoints = self.endpoints.to_dict()
        self.record.versions.update(self.platform.versions())
        self.save()
        return self.endpoints

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._record_outcome(error)
            if self.keep_running and error is None:
                write_stack_file(self)
            else:
                with self.record.phase("teardown", self.save):
                    self.platform.teardown()
        finally:
            if self.record.status == "running" and not self.keep_running:
                self.record.finish("succeeded")
            self.save()
            signal.signal(signal.SIGINT, previous_sigint)
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def _record_outcome(self, error: BaseException | None) -> None:
        if error is None:
            return
        if isinstance(error, KeyboardInterrupt):
            self.record.add_error("aborted", "interrupted (Ctrl-C or SIGTERM)")
            self.record.finish("aborted")
        elif isinstance(error, ComponentError):
            message = f"{error.reason}\n{error.log_tail}".strip()
            self.record.add_error(type(error).__name__, message, error.component)
            self.record.finish("failed")
        elif isinstance(error, ScalelabError):
            self.record.add_error(type(error).__name__, str(error))
            self.record.finish("failed")
        else:
            self.record.add_error(type(error).__name__, "".join(traceback.format_exception(error)))
            self.record.finish("failed")


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class StackRunningError(ScalelabError):
    """Another stack is running from the same state directory (its Prometheus holds the data)."""

    def __init__(self, names: list[str], run_ids: set[str]):
        self.names = names
        self.run_ids = run_ids
        super().__init__(
            f"a stack is already running here ({', '.join(names)} of run "
            f"{', '.join(sorted(run_ids))}): stop it with `scalelab down`, or `scalelab reset`"
        )


def refuse_if_running() -> None:
    live = [(path, pid_file) for path, pid_file in pid_files() if pid_file.process() is not None]
    if live:
        raise StackRunningError([p.name for _, p in live], {p.run_id for _, p in live})


def write_stack_file(session: RunSession) -> None:
    """What `status` and `down` need about a stack left running by `up`."""
    state = {
        "run_id": session.id,
        "run_dir": str(session.dir),
        "endpoints": session.record.endpoints,
        "processes": session.platform.component_pids(),
        "started": session.record.started,
    }
    path = paths.state_dir() / STACK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))
