"""The spec's chaos faults: what, when, for how long, and the fault's own knobs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from scalelab.spec.section import Section
from scalelab.spec.types import Duration, LoadOffset

DAY = 86_400.0
ChaosKind = Literal[
    "pause-worker",
    "restart-broker",
    "cpu-stress",
    "network-delay",
    "network-loss",
    "network-bandwidth",
    "fail-output",
]
NETWORK = ("network-delay", "network-loss", "network-bandwidth")


class ChaosFault(Section):
    """A fault with a window: it starts `at` seconds into the load and lasts `duration`."""

    kind: ChaosKind = Field(
        description="'pause-worker': SIGSTOP a worker, SIGCONT after the duration; "
        "'restart-broker': stop the broker, start it again after the duration; "
        "'cpu-stress': busy-loop processes on the machine; 'network-delay'/'-loss'/"
        "'-bandwidth': through the TCP proxy between the components and the broker; "
        "'fail-output': the output topic refuses results (delivery errors). On Kubernetes: "
        "Chaos Mesh objects where it is installed, else pod exec (docs/kubernetes.md)."
    )
    at: LoadOffset = Field(description="Seconds after the load starts.")
    duration: Annotated[float, Duration(maximum=DAY)] = Field(
        10.0, description="How long the fault lasts (s)."
    )
    worker: int = Field(0, ge=0, le=255, description="pause-worker: index of the live worker.")
    cpus: int = Field(1, ge=1, le=256, description="cpu-stress: busy-loop processes.")
    delay_ms: float = Field(100.0, ge=0, le=60_000, description="network-delay: one way.")
    loss: float = Field(
        0.05,
        ge=0,
        le=1,
        description="network-loss: share of chunks held back a retransmission timeout "
        "(TCP never loses bytes; a lost segment costs its sender a retransmission).",
    )
    bandwidth_kbps: float = Field(
        1000.0, gt=0, le=10_000_000, description="network-bandwidth: kilobytes per second."
    )


def window(fault: ChaosFault) -> tuple[float, float]:
    return fault.at, fault.at + fault.duration
