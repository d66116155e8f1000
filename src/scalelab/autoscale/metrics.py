"""`scalelab_autoscaler_*` metrics, in a registry the caller owns (tests make their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scalelab.autoscale.decisions import Decision


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry, policy: str):
        self.registry = registry
        self.policy = policy
        self.replicas = Gauge(
            "scalelab_autoscaler_replicas", "Replicas now", ["policy"], registry=registry
        )
        self.wanted = Gauge(
            "scalelab_autoscaler_wanted_replicas",
            "Replicas the policy wanted at its last decision",
            ["policy"],
            registry=registry,
        )
        self.decisions = Counter(
            "scalelab_autoscaler_decisions_total",
            "Decisions by action",
            ["policy", "action"],
            registry=registry,
        )
        self.rescale_seconds = Histogram(
            "scalelab_autoscaler_rescale_seconds",
            "Request to completion of a rescale",
            ["policy"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120),
            registry=registry,
        )

    def decided(self, decision: Decision) -> None:
        self.wanted.labels(self.policy).set(decision.wanted)
        self.decisions.labels(self.policy, decision.action).inc()

    def scaled(self, replicas: int) -> None:
        self.replicas.labels(self.policy).set(replicas)

    def completed(self, seconds: float) -> None:
        self.rescale_seconds.labels(self.policy).observe(seconds)
