"""The platform interface: what the platform-free core needs from where things run.

A component is described once (`ComponentLaunch`) and any platform can bring
it up: the local platform as a process, the Kubernetes platform as a pod.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoints:
    """How the core reaches the infrastructure a platform brought up."""

    bootstrap: str
    prometheus_url: str
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, str]:
        return {"bootstrap": self.bootstrap, "prometheus": self.prometheus_url, **self.extra}


@dataclass(frozen=True)
class ComponentLaunch:
    """A scalelab component to run: a Python module with arguments and a metrics port."""

    name: str
    role: str
    module: str
    args: list[str]
    scrape: bool = True
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformEvent:
    """Something the platform saw happen during the run (an autoscaler's decision)."""

    kind: str
    detail: str
    component: str | None = None


class Platform(ABC):
    """Bring infrastructure and components up, watch them, collect logs, tear down."""

    name: str
    on_step: Callable[[str], None] | None = None
    """Told each step of bringing things up (the CLI's live view prints them)."""

    def report(self, text: str) -> None:
        """A step such as `broker: starting` or `broker: ready in 2.1 s`."""
        if self.on_step is not None:
            self.on_step(text)

    @abstractmethod
    def start_infrastructure(self) -> Endpoints:
        """Start broker and monitoring; return once they are ready for real."""

    @abstractmethod
    def start_component(self, launch: ComponentLaunch) -> None:
        """Start a component; its metrics endpoint is scraped by the platform's Prometheus."""

    @abstractmethod
    def stop_component(self, name: str, timeout: float = 30.0) -> int | None:
        """Ask a component to stop (SIGTERM, drain) and return its exit code."""

    @abstractmethod
    def kill_component(self, name: str) -> None:
        """Kill a component without warning (failure experiments)."""

    @abstractmethod
    def wait_scraped(self, timeout: float) -> None:
        """Return once Prometheus has scraped every target at least once."""

    @abstractmethod
    def check_health(self) -> None:
        """Raise ComponentError if a component died unexpectedly."""

    @abstractmethod
    def mark_may_finish(self, name: str) -> None:
        """Declare that a component ends on its own; a clean exit is then not a failure."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the infrastructure this platform runs (for the run record)."""

    @abstractmethod
    def is_running(self, name: str) -> bool:
        """Whether a component is still running (the producer ends on its own)."""

    @abstractmethod
    def component_pids(self) -> dict[str, int]:
        """Process ids by component name (for CPU accounting), where the platform has them."""

    @abstractmethod
    def read_result(self, name: str, file: str) -> bytes | None:
        """A small result file a component wrote (the producer's start time and report, the
        tracker's report), or None while it does not exist.

        The core asks the platform rather than opening the run directory: on a cluster
        the file is in the component's pod, not on this machine.
        """

    def events(self) -> list[PlatformEvent]:
        """What happened since the last call that the run record should hold; the local
        platform has nothing to add (its processes only do what the core tells them)."""
        return []

    @abstractmethod
    def teardown(self) -> None:
        """Stop everything this platform started; never leaves a process behind."""

    def force_stop(self) -> bool:
        """Kill whatever still runs, now (a second Ctrl-C); `teardown` still follows.

        Called from a thread other than the one tearing down, so it only sends signals.
        True when nothing of the run is left, so a stuck teardown may be abandoned.
        Platforms that cannot stop faster than their teardown keep this default (False).
        """
        return False
