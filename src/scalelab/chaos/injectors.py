"""One injector per fault kind: `begin()` at the window's start, `end()` at its end.

Each acts on the local platform through a small `Target` (the worker pids, the broker's
stop and start, the proxy, the output topic), so the scheduler and the injectors are
tested without an orchestrator. A platform with injectors of its own (Kubernetes: Chaos
Mesh objects, pod exec) gives them through `Target.factory` instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scalelab.chaos.proxy import Impairment, TcpProxy
from scalelab.chaos.spec import ChaosFault
from scalelab.errors import ScalelabError

BUSY_LOOP = "while True:\n    pass\n"


class ChaosError(ScalelabError):
    def __init__(self, fault: ChaosFault, why: str):
        self.fault = fault
        super().__init__(f"fault {fault.kind} at {fault.at:g} s: {why}")


@dataclass
class Target:
    """What the injectors may touch; a missing part makes its faults fail, named."""

    worker_pids: Callable[[], list[tuple[str, int]]] | None = None  # live workers, in order
    stop_broker: Callable[[], None] | None = None
    start_broker: Callable[[], None] | None = None
    proxy: TcpProxy | None = None
    set_output_limit: Callable[[int | None], None] | None = None  # None: restore
    # a platform's own injectors: one per fault, or ChaosError naming why it cannot be
    factory: Callable[[ChaosFault], Injector] | None = None


class Injector(Protocol):
    def begin(self) -> str: ...

    def end(self) -> str: ...


class PauseWorker:
    def __init__(self, fault: ChaosFault, target: Target):
        if target.worker_pids is None:
            raise ChaosError(fault, "this platform gives no worker processes")
        self.fault, self.pids = fault, target.worker_pids
        self.victim: tuple[str, int] | None = None

    def begin(self) -> str:
        live = self.pids()
        if self.fault.worker >= len(live):
            raise ChaosError(self.fault, f"no worker {self.fault.worker} ({len(live)} live)")
        self.victim = live[self.fault.worker]
        os.kill(self.victim[1], signal.SIGSTOP)
        return f"SIGSTOP {self.victim[0]} (pid {self.victim[1]})"

    def end(self) -> str:
        assert self.victim is not None
        try:
            os.kill(self.victim[1], signal.SIGCONT)
        except ProcessLookupError:
            return f"{self.victim[0]} was gone before SIGCONT"
        return f"SIGCONT {self.victim[0]}"


class RestartBroker:
    def __init__(self, fault: ChaosFault, target: Target):
        if target.stop_broker is None or target.start_broker is None:
            raise ChaosError(fault, "this platform cannot restart its broker")
        self.stop, self.start = target.stop_broker, target.start_broker

    def begin(self) -> str:
        self.stop()
        return "broker stopped"

    def end(self) -> str:
        self.start()
        return "broker started again"


class CpuStress:
    """Busy-loop processes (stress-ng's `--cpu` without needing stress-ng)."""

    def __init__(self, fault: ChaosFault, target: Target):
        self.fault = fault
        self.procs: list[subprocess.Popen[bytes]] = []

    def begin(self) -> str:
        for _ in range(self.fault.cpus):
            self.procs.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP]))
        return f"{self.fault.cpus} busy-loop process(es): {[p.pid for p in self.procs]}"

    def end(self) -> str:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        return f"{len(self.procs)} busy-loop process(es) killed"


class Network:
    def __init__(self, fault: ChaosFault, target: Target):
        if target.proxy is None:
            raise ChaosError(fault, "no TCP proxy in front of the broker")
        self.fault, self.proxy = fault, target.proxy

    def begin(self) -> str:
        f = self.fault
        impairment = {
            "network-delay": Impairment(delay_s=f.delay_ms / 1000),
            "network-loss": Impairment(loss=f.loss),
            "network-bandwidth": Impairment(bandwidth_bps=f.bandwidth_kbps * 1000),
        }[f.kind]
        self.proxy.set(impairment)
        return f"proxy :{self.proxy.port}: {impairment}"

    def end(self) -> str:
        self.proxy.clear()
        return f"proxy :{self.proxy.port}: cleared"


class FailOutput:
    """The output topic takes no result (max.message.bytes below any record): workers get
    delivery errors and stop without committing past them, as they must."""

    def __init__(self, fault: ChaosFault, target: Target):
        if target.set_output_limit is None:
            raise ChaosError(fault, "no admin access to the output topic")
        self.limit = target.set_output_limit

    def begin(self) -> str:
        self.limit(64)
        return "output topic max.message.bytes = 64"

    def end(self) -> str:
        self.limit(None)
        return "output topic max.message.bytes restored"


INJECTORS: dict[str, Callable[[ChaosFault, Target], Injector]] = {
    "pause-worker": PauseWorker,
    "restart-broker": RestartBroker,
    "cpu-stress": CpuStress,
    "network-delay": Network,
    "network-loss": Network,
    "network-bandwidth": Network,
    "fail-output": FailOutput,
}


def injector(fault: ChaosFault, target: Target) -> Injector:
    if target.factory is not None:
        return target.factory(fault)
    return INJECTORS[fault.kind](fault, target)
