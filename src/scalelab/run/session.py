"""One run's lifetime: run directory, record, platform, and a teardown that always happens.

`RunSession` is a context manager. Leaving it normally marks the run
succeeded; a ScalelabError marks it failed with the error's data; Ctrl-C
(or SIGTERM) marks it aborted. Whatever happens, everything started is torn
down (unless the stack was brought up to stay, with `scalelab up`) and
run.json is written in the `finally`.

Signals follow `Interrupts`: the first one while the run goes on aborts it;
signals during teardown never cut the teardown short, they mark the run
aborted; a second signal forces (SIGKILL what is left, skip the waits).
Teardown never depends on writing: a record that cannot be saved is kept in
memory, and the run fails with the path and errno once everything is stopped.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType

from scalelab import paths
from scalelab.errors import ComponentError, ScalelabError
from scalelab.platform.base import Endpoints
from scalelab.platform.registry import make_platform
from scalelab.run import early
from scalelab.run.record import (
    RunDirError,
    RunRecord,
    base_versions,
    git_commit,
    host_info,
    new_run_id,
)
from scalelab.run.stack import (
    STACK_FILE,
    StackLock,
    StackRunningError,
    refuse_if_running,
    reusable_stack,
)
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec

__all__ = ["FORCED_EXIT_S", "Interrupts", "RunSession", "StackRunningError", "refuse_if_running"]

FORCED_EXIT_S = 15.0
"""After a forced stop, how long the main thread gets to finish before the process exits."""


class Interrupts:
    """Ctrl-C, SIGTERM and SIGHUP for one run, from its start to the end of its analysis.

    A signal while `raising` raises KeyboardInterrupt in the main thread: the first aborts
    the run, a second cuts short what the abort still does before the teardown (export).
    A signal while not `raising` (teardown) is only recorded. The second signal forces:
    `on_force` callbacks SIGKILL what is left, and export and analysis are skipped. A
    thread reads the signals from the wakeup fd, so this works even while the main thread
    is stuck in native code (a Kafka client's destructor waiting for a broker that is
    gone): if the main thread has not finished `FORCED_EXIT_S` after the force, and
    the `on_force` callbacks said nothing is left, `on_abandon` runs and the process
    exits 130.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: list[str] = []
        self.raising = True
        self.forced = threading.Event()
        self.finished = threading.Event()
        self.on_force: list[Callable[[], bool]] = []
        self.on_abandon: list[Callable[[], None]] = []
        self._previous: dict[int, object] = {}
        self._previous_fd = -1
        self._pipe: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Interrupts:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self._pipe = (read_fd, write_fd)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        self.received += [_signal_name(signum) for signum in early.take()]
        self._previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="scalelab-signals", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finished.set()
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        assert self._pipe is not None and self._thread is not None
        os.close(self._pipe[1])  # the watcher reads end-of-file and stops
        self._thread.join(timeout=FORCED_EXIT_S + 5)
        os.close(self._pipe[0])

    def arm(self) -> None:
        """Let signals raise KeyboardInterrupt again (around work that may be cut short)."""
        self.raising = True

    def shield(self) -> None:
        """From now on signals are recorded, never raised (teardown must finish)."""
        self.raising = False

    def check(self) -> None:
        """Raise KeyboardInterrupt for a signal that arrived but whose KeyboardInterrupt
        was swallowed (by a library, or before the CLI's own handler), so that a Ctrl-C
        is never ignored. A run that is already aborting is shielded and never gets here.
        """
        if self.received and self.raising:
            raise KeyboardInterrupt

    def summary(self) -> str:
        return ", ".join(self.received) or "a signal"

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.raising:
            raise KeyboardInterrupt

    def _watch(self) -> None:
        assert self._pipe is not None
        while data := os.read(self._pipe[0], 64):
            for signum in data:
                self.received.append(_signal_name(signum))
                if len(self.received) >= 2 and not self.forced.is_set():
                    self._force()

    def _force(self) -> None:
        """Kill what is left; exit early only if every callback says nothing is left.

        A platform whose teardown does more than stop processes (a cluster deleting
        its objects) says False, and its teardown is never abandoned.
        """
        self.forced.set()
        stopped = True
        for callback in self.on_force:
            try:
                stopped = callback() is True and stopped
            except Exception:  # noqa: BLE001 - a failed kill must not stop the others
                stopped = False
        if self.finished.wait(FORCED_EXIT_S) or not stopped:
            return
        for abandon in self.on_abandon:
            with contextlib.suppress(Exception):
                abandon()
        os._exit(130)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class RunSession:
    def __init__(
        self,
        spec: ExperimentSpec,
        spec_path: Path | None,
        detached: bool = False,
        interrupts: Interrupts | None = None,
    ):
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
        self.unwritable: RunDirError | None = None
        self._own_interrupts = interrupts is None
        self.interrupts = interrupts or Interrupts()
        self._lock: StackLock | None = None
        self._save_lock = threading.Lock()

    def __enter__(self) -> RunSession:
        self._create_dir()
        if self._own_interrupts:
            self.interrupts.__enter__()
        try:
            self.record.host = host_info()
            self.record.versions = base_versions()
            self.record.claim()
            if self.spec.base_dir:
                self.record.git_commit = git_commit(self.spec.base_dir)
            self.interrupts.on_force.append(self.platform.force_stop)
            self.interrupts.on_abandon.append(self._abandon)
            self.save()
        except BaseException as error:  # Ctrl-C as the run begins: `with` skips __exit__
            self.__exit__(type(error), error, error.__traceback__)  # the record is closed
            raise
        return self

    def _create_dir(self) -> None:
        """The run directory and its spec; nothing has started yet, so a failure is raised."""
        target = self.dir
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            target = self.dir / "spec.yaml"
            target.write_text(self.resolved)
        except OSError as error:
            raise RunDirError(target, error) from error

    def save(self) -> None:
        """Write run.json; a failure is kept (first one wins) and never raised."""
        with self._save_lock:
            try:
                self.record.write(self.dir)
            except OSError as error:
                if self.unwritable is None:
                    self.unwritable = RunDirError(self.dir / "run.json", error)

    def start_stack(self) -> Endpoints:
        """Start the broker and monitoring, or use those `scalelab up` left running."""
        self.interrupts.check()
        self._lock = StackLock.take(self.id)
        kept = None if self.detached else reusable_stack(self.spec.platform.kind)
        attach = getattr(self.platform, "attach_infrastructure", None)
        if kept is not None and attach is not None and self.spec.workload.kind != "flink":
            with self.record.phase("setup", self.save):
                self.endpoints = attach(kept)
            self.record.results["stack"] = {"run_id": kept["run_id"], "reused": True}
            self.record.add_event(
                "stack", f"reused the stack `scalelab up` started ({kept['run_id']})"
            )
        else:
            refuse_if_running()
            with self.record.phase("setup", self.save):
                self.endpoints = self.platform.start_infrastructure()
        assert self.endpoints is not None
        self.interrupts.check()
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
        self.interrupts.shield()
        _release_frames(tb)
        try:
            self._record_outcome(error)
            if self.keep_running and error is None:
                write_stack_file(self)
            else:
                with self.record.phase("teardown", self.save):
                    self.platform.teardown()
        finally:
            self._close_record()
            self.save()
            if self._lock is not None:
                self._lock.release()
            if self._own_interrupts:
                self.interrupts.__exit__()

    def _record_outcome(self, error: BaseException | None) -> None:
        if error is None:
            return
        if isinstance(error, KeyboardInterrupt):
            if isinstance(error.__context__, ScalelabError):  # the run had failed before
                self._record_outcome(error.__context__)
            self.record.add_error("aborted", f"interrupted ({self.interrupts.summary()})")
            self.record.finish("aborted")
        elif isinstance(error, ComponentError):
            message = f"{error.reason}\n{error.log_tail}".strip()
            self.record.add_error(type(error).__name__, message, error.component)
            self.record.finish("failed")
        elif isinstance(error, ScalelabError | OSError):
            self.record.add_error(type(error).__name__, str(error))
            self.record.finish("failed")
        else:
            self.record.add_error(type(error).__name__, "".join(traceback.format_exception(error)))
            self.record.finish("failed")

    def _close_record(self) -> None:
        """Say what happened during teardown: signals, a forced stop, an unwritable record."""
        if self.interrupts.received and not self._aborted_by_signal():
            what = f"{self.interrupts.summary()} during teardown; the teardown was finished"
            if self.record.status == "running":
                self.record.add_error("aborted", what)
                self.record.finish("aborted")
            else:
                self.record.add_event("interrupt", what)
        if self.interrupts.forced.is_set():
            self.record.add_error("aborted", _FORCED)
        if self.unwritable is not None:
            self.record.add_error(type(self.unwritable).__name__, str(self.unwritable))
            if self.record.status in ("running", "succeeded"):
                self.record.finish("failed")
        if self.record.status == "running" and not self.keep_running:
            self.record.finish("succeeded")

    def _aborted_by_signal(self) -> bool:
        return any(e["kind"] == "aborted" for e in self.record.errors)

    def _abandon(self) -> None:
        """The main thread is stuck after a forced stop: close the record from here, and say so."""
        self.record.add_error("aborted", _FORCED + f"; exited after {FORCED_EXIT_S:g} s stuck")
        self.record.finish("aborted")
        if self._save_lock.acquire(timeout=2):  # the main thread may be in save() right now
            try:
                with contextlib.suppress(OSError):
                    self.record.write(self.dir)
            finally:
                self._save_lock.release()
        print(f"\naborted run {self.id} (forced exit)  →  {self.dir}", file=sys.stderr)


_FORCED = "forced stop (second signal): remaining processes killed, export and analysis skipped"


def _release_frames(tb: TracebackType | None) -> None:
    """Free the locals of the frames an exception went through, before the teardown.

    The traceback keeps them alive (an orchestrator and its Kafka clients) until after the
    broker has stopped; a Kafka client destroyed then waits for a broker that is gone.
    """
    if tb is None:
        return
    traceback.clear_frames(tb)
    gc.collect()


def write_stack_file(session: RunSession) -> None:
    """What `status` and `down` need about a stack left running by `up`."""
    state = {
        "run_id": session.id,
        "run_dir": str(session.dir),
        "endpoints": session.record.endpoints,
        "processes": session.platform.component_pids(),
        "started": session.record.started,
        "platform": session.spec.platform.kind,
    }
    path = paths.state_dir() / STACK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))
