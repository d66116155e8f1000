"""Correlations: strongest pairs first, lagged leads found, constant series dropped with a note."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scalelab.analysis.correlate import correlate, lagged_correlation, usable_columns


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
