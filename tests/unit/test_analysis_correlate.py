"""Correlations: strongest pairs first, lagged leads found, constant series dropped with a note."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scalelab.analysis.correlate import correlate, lagged_correlation, quantity, usable_columns


def noisy_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal(n)) + rng.standard_normal(n) * 0.1


def test_lagged_correlation_finds_the_lag_built_in() -> None:
    a = noisy_walk(200, 1)
    rng = np.random.default_rng(2)
    b = np.concatenate([np.zeros(3), a[:-3]]) + rng.standard_normal(200) * 0.05  # b = a, 3 later
    assert lagged_correlation(a, b, 10) == (3, pytest.approx(1.0, abs=0.01))
    assert lagged_correlation(b, a, 10)[0] == -3


def test_a_lead_is_reported_with_its_direction_and_seconds() -> None:
    rng = np.random.default_rng(3)
    rate = rng.standard_normal(120)
    lag = np.concatenate([np.zeros(4), rate[:-4]]) + rng.standard_normal(120) * 0.1
    frame = pd.DataFrame({"input rate": rate, "consumer lag": lag})
    (pair,) = correlate(frame, step_s=0.5, key=["input rate", "consumer lag"]).pairs
    assert (pair.lag_steps, pair.lag_s, pair.leader) == (4, 2.0, "input rate")
    assert abs(pair.pearson) < 0.3 < 0.9 < pair.lagged_pearson  # invisible without the lag


def test_pearson_and_spearman_strongest_first() -> None:
    x = np.linspace(0, 1, 50)
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "x": x,
            "cube": x**3,  # monotonic: Spearman 1, Pearson < 1
            "noise": rng.standard_normal(50),
            "minus": -x + rng.standard_normal(50) * 0.2,
        }
    )
    result = correlate(frame, 1.0, max_lag=0)
    first = result.pairs[0]
    assert {first.a, first.b} == {"x", "cube"}
    assert first.spearman == pytest.approx(1.0) and first.pearson < 1.0
    strengths = [min(abs(p.pearson), abs(p.spearman)) for p in result.pairs]
    assert strengths == sorted(strengths, reverse=True)
    minus = next(p for p in result.pairs if {p.a, p.b} == {"x", "minus"})
    assert minus.pearson < -0.7


def test_a_pair_made_by_one_outlier_ranks_below_a_steady_one() -> None:
    rng = np.random.default_rng(6)
    base = rng.standard_normal(30)
    spike = np.zeros(30)
    spike[7] = 50.0  # one step where everything jumps (a GC pause, a rebalance)
    frame = pd.DataFrame(
        {
            "key": base + spike,
            "steady": base + spike + rng.standard_normal(30) * 0.3,
            "spiky": spike + rng.standard_normal(30),  # unrelated apart from the spike
        }
    )
    steady, spiky = correlate(frame, 1.0, key=["key"], max_lag=0).pairs
    assert (steady.b, spiky.b) == ("steady", "spiky")
    assert spiky.pearson > 0.95 and spiky.spearman < 0.5 < 0.9 < steady.spearman


def test_constant_and_short_series_are_dropped_with_a_note_not_nan() -> None:
    frame = pd.DataFrame(
        {
            "a": np.arange(10.0),
            "b": np.arange(10.0) ** 2,
            "flat": np.full(10, 4.0),
            "short": [1.0, 2.0] + [np.nan] * 8,
        }
    )
    kept, dropped = usable_columns(frame)
    assert list(kept.columns) == ["a", "b"]
    assert {d["series"]: d["reason"] for d in dropped} == {
        "flat": "constant at 4",
        "short": "2 samples",
    }
    result = correlate(frame, 1.0, key=["a", "b", "flat"])
    assert len(result.pairs) == 1 and not np.isnan(result.pairs[0].pearson)
    assert list(result.matrix.columns) == ["a", "b"]
    json.dumps(result.to_dict())  # JSON-ready: no NaN, no numpy types


def test_nothing_to_correlate_gives_an_empty_result_and_a_message() -> None:
    result = correlate(pd.DataFrame({"flat": np.ones(20)}), 1.0)
    assert result.pairs == [] and "no pairs" in result.message
    assert correlate(pd.DataFrame(), 1.0).pairs == []


def test_with_key_series_only_pairs_touching_them_are_ranked() -> None:
    rng = np.random.default_rng(5)
    base = rng.standard_normal(40)
    frame = pd.DataFrame(
        {
            "latency p99": base,
            "m{x=1}": base + rng.standard_normal(40) * 0.01,
            "m{x=2}": base + rng.standard_normal(40) * 0.01,  # same family as m{x=1}: skipped
            "other": base + rng.standard_normal(40) * 0.5,
        }
    )
    pairs = correlate(frame, 1.0, key=["latency p99"]).pairs
    assert all("latency p99" in (p.a, p.b) for p in pairs)
    assert len(pairs) == 3
    without_key = correlate(frame.drop(columns=["latency p99"]), 1.0).pairs
    assert {(p.a, p.b) for p in without_key} == {("m{x=1}", "other"), ("m{x=2}", "other")}


def test_trivial_pairs_are_left_out_and_counted() -> None:
    """One quantity measured twice, a target against its own metric, percentiles of one
    distribution: none of them is shown; a real pair (CPU against latency) is."""
    rng = np.random.default_rng(3)
    load = rng.uniform(1, 10, 60)
    frame = pd.DataFrame(
        {
            "target rate": load,
            "input rate": load + rng.normal(0, 0.01, 60),
            "kafka_server_brokertopicmetrics_messagesin_total{topic=scalelab.input}": load * 1.001,
            "throughput": load + rng.normal(0, 0.05, 60),
            "scalelab_worker_processed_total{component=worker-0,instance=x,role=worker}": load,
            "latency p95": load * 2 + rng.normal(0, 0.1, 60),
            "latency p99": load * 2.2 + rng.normal(0, 0.1, 60),
            "cpu worker-0": load * 0.1 + rng.normal(0, 0.01, 60),
            "scalelab_worker_busy_seconds_total{component=worker-0,instance=x,role=worker}": load
            * 0.1,
        }
    )
    result = correlate(frame, 1.0, top=100)
    shown = {frozenset((p.a, p.b)) for p in result.pairs}
    assert frozenset(("latency p95", "latency p99")) not in shown
    assert frozenset(("target rate", "input rate")) not in shown
    assert not any(quantity(p.a) == quantity(p.b) for p in result.pairs)
    assert frozenset(("cpu worker-0", "latency p99")) in shown
    # sent: 3 series (3 pairs), completed: 2 (1), latency: 2 (1), cpu worker-0: 2 (1)
    assert result.trivial == 6


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("latency p50", "scalelab_tracker_latency_seconds{worker=worker-1} p99"),
        ("scalelab_tracker_stage_seconds{stage=inference,worker=worker-1} p99",
         "scalelab_worker_stage_seconds{component=worker-1,instance=x,stage=inference} p95"),
        ("throughput", "kafka_server_brokertopicmetrics_messagesin_total{topic=scalelab.output}"),
        ("m{a=1} p95", "m{a=1} p99"),
    ],
)  # fmt: skip
def test_series_of_one_quantity(a: str, b: str) -> None:
    assert quantity(a) == quantity(b)


def test_different_quantities_are_kept_apart() -> None:
    names = ["throughput", "latency p99", "cpu worker-0", "cpu worker-1", "consumer lag", "power"]
    assert len({quantity(n) for n in names}) == len(names)
