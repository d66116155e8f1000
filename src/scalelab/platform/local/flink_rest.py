"""Flink's REST API, as scalelab uses it: upload a jar, run it, watch it, rescale, stop.

Every failure is a `FlinkJobError` naming what was refused and Flink's own root cause
(the last `Caused by:` of the server's trace), so a bad jar, entry class or argument is
reported in one line before any load starts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scalelab.errors import ComponentError

TIMEOUT_S = 60.0  # a jar run executes the job's main() on the JobManager: give it time
RUNNING = "RUNNING"
FAILED_STATES = {"FAILED", "CANCELED", "FINISHED", "SUSPENDED"}


class FlinkJobError(ComponentError):
    """The Flink cluster refused or failed the job; `reason` is Flink's root cause."""

    def __init__(self, what: str, reason: str):
        self.what = what
        super().__init__("flink", f"{what}: {reason}")


@dataclass(frozen=True)
class JobState:
    state: str
    tasks: dict[str, int]  # task state -> count, over every vertex
    parallelism: dict[str, int]  # vertex name -> parallelism

    @property
    def all_running(self) -> bool:
        total = sum(self.tasks.values())
        return self.state == RUNNING and total > 0 and self.tasks.get(RUNNING, 0) == total


def root_cause(errors: list[str]) -> str:
    """The most specific line of Flink's error list: the last `Caused by:`, or the first line."""
    text = "\n".join(errors)
    causes = re.findall(r"Caused by: ([^\n]+)", text)
    lines = [line for line in text.splitlines() if line.strip()]
    cause = causes[-1] if causes else (lines[0] if lines else "no reason given")
    for wrapper in ("java.util.concurrent.CompletionException: ",):
        cause = cause.removeprefix(wrapper)
    return cause.strip()


class FlinkRest:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=TIMEOUT_S)

    def close(self) -> None:
        self.http.close()

    # -- cluster --------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        return dict(self._get("/overview"))

    def has_taskmanagers(self, count: int) -> bool:
        """True once `count` TaskManagers are registered; False while the REST port is down."""
        try:
            return int(self.overview().get("taskmanagers", 0)) >= count
        except FlinkJobError:
            return False

    # -- jobs -----------------------------------------------------------------------------
    def upload(self, jar: Path) -> str:
        with open(jar, "rb") as data:
            files = {"jarfile": (jar.name, data, "application/x-java-archive")}
            body = self._check(
                self._call("POST", "/jars/upload", files=files), f"upload {jar.name}"
            )
        if body.get("status") != "success":
            raise FlinkJobError(f"upload {jar.name}", str(body))
        return str(body["filename"]).rsplit("/", 1)[-1]

    def run(
        self,
        jar_id: str,
        entry_class: str,
        args: list[str],
        parallelism: int,
        savepoint: str | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "entryClass": entry_class,
            "programArgsList": args,
            "parallelism": parallelism,
        }
        if savepoint:
            body["savepointPath"] = savepoint
        what = f"run {entry_class} from {jar_id.split('_', 1)[-1]}"
        reply = self._check(self._call("POST", f"/jars/{jar_id}/run", json=body), what)
        return str(reply["jobid"])

    def job_state(self, job_id: str) -> JobState:
        body = self._get(f"/jobs/{job_id}")
        tasks: dict[str, int] = {}
        parallelism = {}
        for vertex in body.get("vertices", []):
            parallelism[str(vertex["name"])] = int(vertex["parallelism"])
            for state, count in vertex.get("tasks", {}).items():
                tasks[state] = tasks.get(state, 0) + int(count)
        return JobState(str(body["state"]), tasks, parallelism)

    def failure(self, job_id: str) -> str:
        """The job's root exception, as Flink reports it."""
        try:
            body = self._get(f"/jobs/{job_id}/exceptions")
        except FlinkJobError as error:
            return str(error)
        history = body.get("exceptionHistory", {}).get("entries", [])
        text = (history[0] if history else body).get("stacktrace") or ""
        return root_cause([text]) if text else "no exception recorded"

    def wait_running(self, job_id: str, timeout: float, check: Any = None) -> JobState:
        """Until the job and every one of its tasks run; a failed job raises with its cause."""
        deadline = time.monotonic() + timeout
        state = self.job_state(job_id)
        while time.monotonic() < deadline:
            if check is not None:
                check()
            state = self.job_state(job_id)
            if state.all_running:
                return state
            if state.state in FAILED_STATES or state.tasks.get("FAILED"):
                raise FlinkJobError(f"job {job_id} {state.state}", self.failure(job_id))
            time.sleep(0.2)
        raise FlinkJobError(
            f"job {job_id}", f"not running after {timeout:g} s (state {state.state}, {state.tasks})"
        )

    def rescale(self, job_id: str, parallelism: int) -> None:
        """Adaptive scheduler: every vertex may run at up to `parallelism` from now on."""
        current = self._get(f"/jobs/{job_id}/resource-requirements")
        body = {
            vertex: {"parallelism": {"lowerBound": 1, "upperBound": parallelism}}
            for vertex in current
        }
        response = self._call("PUT", f"/jobs/{job_id}/resource-requirements", json=body)
        self._check(response, f"rescale job {job_id} to {parallelism}")

    def stop_with_savepoint(
        self, job_id: str, directory: Path | None = None, timeout: float = 120, drain: bool = False
    ) -> str:
        """Stop the job with a savepoint (in the cluster's savepoint directory unless given);
        returns the savepoint's path. `drain` first advances event time to the end, so every
        open window fires (the end of a run), where a rescale must not."""
        body: dict[str, Any] = {"drain": drain}
        if directory is not None:
            body["targetDirectory"] = directory.as_uri()
        trigger = self._check(self._call("POST", f"/jobs/{job_id}/stop", json=body), "stop job")
        request = str(trigger["request-id"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self._get(f"/jobs/{job_id}/savepoints/{request}")
            if status.get("status", {}).get("id") == "COMPLETED":
                operation = status.get("operation", {})
                if "location" in operation:
                    return str(operation["location"])
                cause = operation.get("failure-cause", {}).get("stack-trace", "")
                raise FlinkJobError(f"savepoint of job {job_id}", root_cause([str(cause)]))
            time.sleep(0.2)
        raise FlinkJobError(f"savepoint of job {job_id}", f"not done after {timeout:g} s")

    def cancel(self, job_id: str) -> None:
        response = self._call("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})
        if response.status_code not in (200, 202, 404):
            self._check(response, f"cancel job {job_id}")

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        return dict(self._get(f"/jobs/{job_id}/checkpoints"))

    # -- plumbing -------------------------------------------------------------------------
    def _get(self, path: str) -> Any:
        return self._check(self._call("GET", path), f"GET {path}")

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a connection failure names the JobManager's REST endpoint."""
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise FlinkJobError(f"{method} {self.url}{path}", f"no answer ({error})") from error

    @staticmethod
    def _check(response: httpx.Response, what: str) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = {"errors": [response.text[:500]]}
        if response.status_code >= 400 or (isinstance(body, dict) and "errors" in body):
            errors = body.get("errors", []) if isinstance(body, dict) else []
            raise FlinkJobError(what, root_cause([str(e) for e in errors]))
        return body
