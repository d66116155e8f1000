"""The run record (run.json): status, phase windows, versions, host, errors.

It is written when the run starts and again in a `finally`, so a failed or
interrupted run still leaves its record next to whatever data it produced.
`owner` names the scalelab process that runs it: a `running` record whose
owner is gone was orphaned (scalelab was killed) and `scalelab reset`
closes it.
"""

from __future__ import annotations

import errno as errno_codes
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psutil

import scalelab
from scalelab.errors import ScalelabError

Status = Literal["running", "succeeded", "failed", "aborted"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Phase:
    name: str
    start: str
    end: str | None = None


@dataclass
class RunRecord:
    id: str
    name: str
    status: Status = "running"
    started: str = field(default_factory=lambda: rfc3339(utc_now()))
    ended: str | None = None
    phases: list[Phase] = field(default_factory=list)
    platform: str = "local"
    repetition: int = 1
    endpoints: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    git_commit: str | None = None
    spec_path: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    events: list[dict[str, str]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    owner: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str, on_change: Callable[[], None] | None = None) -> Iterator[Phase]:
        """Record a phase's UTC window, also when it ends with an exception."""
        phase = Phase(name, rfc3339(utc_now()))
        self.phases.append(phase)
        if on_change:
            on_change()
        try:
            yield phase
        finally:
            phase.end = rfc3339(utc_now())
            if on_change:
                on_change()

    def window(self, name: str) -> tuple[datetime, datetime] | None:
        for phase in self.phases:
            if phase.name == name and phase.end:
                return parse_rfc3339(phase.start), parse_rfc3339(phase.end)
        return None

    def add_error(self, kind: str, message: str, component: str | None = None) -> None:
        error = {"kind": kind, "message": message}
        if component:
            error["component"] = component
        self.errors.append(error)

    def add_event(self, kind: str, detail: str, component: str | None = None) -> None:
        """Something that happened during the run (an injected fault, a group change)."""
        event = {"time": rfc3339(utc_now()), "kind": kind, "detail": detail}
        if component:
            event["component"] = component
        self.events.append(event)

    def claim(self) -> None:
        """Name this process as the run's owner (pid and start time, against pid reuse)."""
        me = psutil.Process()
        self.owner = {"pid": me.pid, "create_time": me.create_time(), "host": platform.node()}

    def owner_alive(self) -> bool:
        """Whether the process that runs this record still exists (False when none is named)."""
        pid, created = self.owner.get("pid"), self.owner.get("create_time")
        if self.owner.get("host") not in (None, platform.node()):
            return True  # another machine's run (a shared runs/): not ours to call orphaned
        if pid is None or created is None:
            return False
        try:
            proc = psutil.Process(int(pid))
            same = abs(proc.create_time() - float(created)) < 1.0
            return same and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def finish(self, status: Status) -> None:
        self.status = status
        self.ended = rfc3339(utc_now())

    def write(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / "run.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        tmp.replace(run_dir / "run.json")

    @classmethod
    def read(cls, run_dir: Path) -> RunRecord:
        data = json.loads((run_dir / "run.json").read_text())
        data["phases"] = [Phase(**p) for p in data.get("phases", [])]
        return cls(**data)


class RunDirError(ScalelabError):
    """The run directory (or a file in it) cannot be written: names the path and the errno."""

    def __init__(self, path: Path, error: OSError):
        self.path = path
        self.errno = error.errno
        self.strerror = error.strerror or str(error)
        code = errno_codes.errorcode.get(error.errno or 0, "?")
        super().__init__(f"cannot write {path}: {self.strerror} (errno {self.errno} {code})")


def new_run_id(name: str, resolved_spec: str, moment: datetime | None = None) -> str:
    """`<UTC timestamp>-<name>-<short hash>`; the hash separates runs started the same second."""
    moment = moment or utc_now()
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(f"{resolved_spec}{moment.isoformat()}{os.getpid()}".encode())
    return f"{stamp}-{name}-{digest.hexdigest()[:6]}"


def host_info() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "os": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def base_versions() -> dict[str, str]:
    return {"scalelab": scalelab.__version__, "python": sys.version.split()[0]}


def git_commit(directory: Path) -> str | None:
    """The commit of the spec's directory, with '-dirty' when it has local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
