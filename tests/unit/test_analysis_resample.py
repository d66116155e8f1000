"""Resampling onto one grid: counter rates with resets, gauges, histogram quantiles, names."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from scalelab.analysis.resample import (
    Grid,
    bucket_quantile,
    counter_increase,
    counter_rate,
    gauge_last,
    histogram_quantile_series,
    resample_metrics,
    series_names,
)

T0 = 1_790_000_000 * 10**9
S = 10**9


def grid(n: int = 10, step: float = 1.0) -> Grid:
    return Grid(T0, step, n, T0)


def test_grid_covers_the_span_and_bins_times() -> None:
    g = Grid.covering(T0, T0 + int(9.5 * S), 1.0, T0 - 2 * S)
    assert g.n == 10
    assert g.seconds[0] == 2.0
    assert list(g.bin_of(np.array([T0 - 1, T0, T0 + int(3.2 * S), T0 + 20 * S]))) == [-1, 0, 3, -1]
    assert g.inside((T0 + 2 * S, T0 + 5 * S)).sum() == 3


def test_counter_rate_is_the_per_second_increase() -> None:
    times = T0 + np.arange(0, 11) * S
    values = 5.0 * np.arange(11)
    assert np.allclose(counter_rate(times, values, grid()), 5.0)


def test_counter_rate_counts_a_reset_as_prometheus_does() -> None:
    times = T0 + np.arange(0, 11) * S
    values = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9, 11], dtype=float)  # restart after 8
    rates = counter_rate(times, values, grid())
    assert rates[4] == pytest.approx(1.0)  # 8 -> 1 after a reset: +1
    assert np.allclose(np.delete(rates, 4), 2.0)
    assert counter_increase(times, values, (T0, T0 + 10 * S)) == (pytest.approx(19.0), 10.0)


def test_counter_rate_is_nan_where_samples_do_not_reach() -> None:
    times = T0 + np.arange(3, 8) * S
    rates = counter_rate(times, np.arange(5, dtype=float), grid())
    assert np.isnan(rates[:3]).all() and np.isnan(rates[7:]).all()
    assert np.allclose(rates[3:7], 1.0)


def test_gauge_takes_the_last_value_and_goes_stale() -> None:
    times = T0 + np.array([0, 1, 2]) * S + S // 2
    values = np.array([7.0, 8.0, 9.0])
    out = gauge_last(times, values, grid(), stale_s=2.0)
    assert list(out[:4]) == [7.0, 8.0, 9.0, 9.0]
    assert np.isnan(out[5:]).all()


def test_bucket_quantile_interpolates_like_histogram_quantile() -> None:
    bounds = np.array([0.1, 0.2, 0.5, math.inf])
    cumulative = np.array([50.0, 90.0, 100.0, 100.0])
    assert bucket_quantile(0.5, bounds, cumulative) == pytest.approx(0.1)
    assert bucket_quantile(0.7, bounds, cumulative) == pytest.approx(0.15)
    assert bucket_quantile(0.99, bounds, cumulative) == pytest.approx(0.2 + 0.3 * 9 / 10)
    assert math.isnan(bucket_quantile(0.99, bounds, np.zeros(4)))
    assert bucket_quantile(0.99, bounds, np.array([0, 0, 0, 10.0])) == 0.5


def test_histogram_series_uses_bucket_deltas_per_step() -> None:
    times = T0 + np.arange(0, 11) * S
    buckets = {
        0.1: (times, 9.0 * np.arange(11)),  # 9 fast observations a second
        1.0: (times, 10.0 * np.arange(11)),  # and one up to 1 s
        math.inf: (times, 10.0 * np.arange(11)),
    }
    p99 = histogram_quantile_series(buckets, grid())
    assert np.allclose(p99, 0.1 + 0.9 * (9.9 - 9) / 1)


def test_series_names_show_only_labels_that_differ() -> None:
    keys = [
        ("m", {"component": "worker-0", "job": "w", "run_id": "r"}),
        ("m", {"component": "worker-1", "job": "w", "run_id": "r"}),
        ("single", {"job": "x"}),
    ]
    names = sorted(series_names(keys).values())
    assert names == ["m{component=worker-0}", "m{component=worker-1}", "single"]


def long_frame(rows: Sequence[tuple[str, dict[str, str], float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric": [r[0] for r in rows],
            "labels": [json.dumps(r[1], sort_keys=True, separators=(",", ":")) for r in rows],
            "timestamp": pd.to_datetime([T0 + int(r[2] * S) for r in rows], utc=True),
            "value": [r[3] for r in rows],
        }
    )


def test_resample_metrics_classifies_counters_gauges_and_histograms() -> None:
    rows: list[tuple[str, dict[str, str], float, float]] = []
    for t in range(11):
        rows.append(("reqs_total", {"c": "a"}, t, 3.0 * t))
        rows.append(("reqs_total", {"c": "b"}, t, 1.0 * t))
        rows.append(("temperature", {}, t, 40.0 + t))
        rows.append(("reqs_created", {}, t, 123.0))
        for le, per_second in (("0.5", 4.0), ("+Inf", 4.0)):
            rows.append(("lat_seconds_bucket", {"le": le}, t, per_second * t))
        rows.append(("lat_seconds_count", {}, t, 4.0 * t))
    frame = resample_metrics(long_frame(rows), grid())
    assert set(frame.columns) == {
        "reqs_total{c=a}",
        "reqs_total{c=b}",
        "temperature",
        "lat_seconds p99",
    }
    assert np.allclose(frame["reqs_total{c=a}"], 3.0)
    assert list(frame["temperature"])[:2] == [41.0, 42.0]
    assert np.allclose(frame["lat_seconds p99"], 0.5 * 0.99)


def test_resample_of_nothing_is_an_empty_frame_on_the_grid() -> None:
    frame = resample_metrics(long_frame([]), grid(4))
    assert frame.shape == (4, 0)
