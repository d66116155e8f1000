"""The chaos `Target` of the local platform: worker pids, broker restart, the output topic."""

from __future__ import annotations

from collections.abc import Callable

from scalelab.chaos.injectors import Target
from scalelab.chaos.output import output_limit_setter
from scalelab.chaos.proxy import TcpProxy
from scalelab.platform.local.platform import LocalPlatform

BROKER_STOP_S = 30.0


def local_target(
    platform: LocalPlatform,
    live_workers: Callable[[], list[str]],
    output_topic: str,
    bootstrap: str,
    proxy: TcpProxy | None = None,
) -> Target:
    def worker_pids() -> list[tuple[str, int]]:
        pids = platform.component_pids()
        return [(name, pids[name]) for name in live_workers() if name in pids]

    def stop_broker() -> None:
        platform.expected_exits.add("broker")
        platform.processes["broker"].stop(BROKER_STOP_S)

    def start_broker() -> None:
        platform.processes["broker"].start()
        platform.expected_exits.discard("broker")

    has_broker = "broker" in platform.processes
    return Target(
        worker_pids=worker_pids,
        stop_broker=stop_broker if has_broker else None,
        start_broker=start_broker if has_broker else None,
        proxy=proxy,
        set_output_limit=output_limit_setter(bootstrap, output_topic),
    )
