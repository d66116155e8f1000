"""Pluggable scaling policies keyed by the spec's name (like rate profiles).

A policy turns a `Signals` snapshot into a wanted replica count and the reason, in
words a reader of `decisions.parquet` understands. It never acts: the controller
clamps to [min, max], applies the cooldown and calls the actuator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scalelab.autoscale.signals import Signals
from scalelab.errors import ScalelabError
from scalelab.spec.autoscale import AutoscalerSpec


@dataclass(frozen=True)
class Want:
    replicas: int
    reason: str


class Policy(Protocol):
    name: str
    # True where the policy judges what a worker can do from its busy time or CPU over
    # the rate window: start-up work (a JVM loading classes, a model loading, a task
    # restoring) inflates both before any message arrives, so the controller holds its
    # rescales until the window lies wholly inside the load.
    measures_capacity: bool

    def decide(self, signals: Signals) -> Want: ...


PolicyFactory = Callable[[AutoscalerSpec], Policy]
_REGISTRY: dict[str, PolicyFactory] = {}


def register(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    def add(factory: PolicyFactory) -> PolicyFactory:
        _REGISTRY[name] = factory
        return factory

    return add


def make_policy(spec: AutoscalerSpec) -> Policy:
    from scalelab.autoscale import policies  # noqa: F401 - registers the built-in policies

    try:
        return _REGISTRY[spec.policy](spec)
    except KeyError:
        raise ScalelabError(f"unknown autoscaler policy {spec.policy!r}") from None


def policy_names() -> list[str]:
    from scalelab.autoscale import policies  # noqa: F401

    return sorted(_REGISTRY)
