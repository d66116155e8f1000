"""Confidence intervals and disagreement over repetitions, and the capacity binary search."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scalelab.sweep.search import grid_points, probes_needed, search
from scalelab.sweep.stats import cell_table, outliers, t_interval


def test_t_interval_of_three_values() -> None:
    interval = t_interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.3027 (tables); s = 1; half width = 4.3027 / sqrt(3)
    assert interval.mean == 2.0 and interval.n == 3
    assert interval.low == pytest.approx(2 - 2.4841, abs=1e-3)
    assert interval.high == pytest.approx(2 + 2.4841, abs=1e-3)


def test_no_interval_from_one_value_and_missing_values_are_skipped() -> None:
    assert t_interval([5.0]).low is None and t_interval([5.0]).mean == 5.0
    assert t_interval([float("nan"), 4.0, None, 6.0]).n == 2  # type: ignore[list-item]
    assert t_interval([]).mean is None


def test_the_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(2000):
        interval = t_interval(rng.normal(10.0, 3.0, size=4).tolist())
        assert interval.low is not None and interval.high is not None
        covered += interval.low <= 10.0 <= interval.high
    assert 0.93 < covered / 2000 < 0.97


def test_a_repetition_far_from_the_others_is_named() -> None:
    assert outliers([10.0, 10.2, 9.9, 10.1, 14.0]) == [4]
    assert outliers([10.0, 10.2, 9.9, 10.1]) == []
    assert outliers([1.0, 5.0]) == []  # two values: nothing to compare a value against


def test_cell_table_groups_repetitions() -> None:
    runs = pd.DataFrame(
        {
            "config": ["r=2", "r=2", "r=2", "r=4"],
            "r": [2, 2, 2, 4],
            "run_id": ["a", "b", "c", "d"],
            "throughput": [2.0, 2.0, 2.3, 3.9],
        }
    )
    cells = cell_table(runs, ["r"], ["throughput", "absent"]).set_index("config")
    assert cells.loc["r=2", "runs"] == 3 and cells.loc["r=4", "runs"] == 1
    assert cells.loc["r=2", "throughput"] == pytest.approx(2.1)
    assert cells.loc["r=2", "throughput_lo"] < 2.1 < cells.loc["r=2", "throughput_hi"]
    assert pd.isna(cells.loc["r=4", "throughput_lo"])


class System:
    """A system that sustains every rate up to its capacity, counting the probes made."""

    def __init__(self, capacity: float):
        self.capacity = capacity
        self.rates: list[float] = []

    def __call__(self, rate: float) -> bool:
        self.rates.append(rate)
        return rate <= self.capacity


@pytest.mark.parametrize("capacity", [0.7, 3.0, 7.3, 12.9, 19.99])
def test_search_brackets_the_capacity_within_the_resolution(capacity: float) -> None:
    system = System(capacity)
    result = search(system, upper=20.0, resolution=1.0)
    assert result.capacity is not None and result.first_failing is not None
    assert result.capacity <= capacity < result.first_failing
    assert result.first_failing - result.capacity <= 1.0
    assert system.rates[0] == 20.0 and len(system.rates) <= probes_needed(20.0, 1.0)
    assert [r for r, _ in result.probes] == system.rates


def test_search_says_at_least_when_the_upper_bound_is_sustained() -> None:
    result = search(System(50.0), upper=20.0, resolution=1.0)
    assert result.capacity == 20.0 and result.first_failing is None
    assert "at least" in result.note and len(result.probes) == 1


def test_search_with_no_sustained_rate_has_no_capacity() -> None:
    result = search(System(0.1), upper=8.0, resolution=1.0)
    assert result.capacity is None and result.first_failing is not None
    assert result.first_failing <= 1.0


def test_binary_search_needs_far_fewer_runs_than_a_grid() -> None:
    assert probes_needed(32.0, 0.5) == 1 + 6
    assert grid_points(32.0, 0.5) == 64
    assert math.isclose(grid_points(3.0, 1.0), 3)


def test_a_floor_is_probed_only_when_nothing_else_was_sustained() -> None:
    slow = System(2.0)
    result = search(slow, upper=20.0, resolution=10.0, lower=1.0)
    assert slow.rates == [20.0, 10.0, 1.0]  # the middle of (1, 20) on a grid of 1 msg/s
    assert result.capacity == 1.0 and result.first_failing == 10.0
    fast = System(12.0)
    assert search(fast, upper=20.0, resolution=10.0, lower=1.0).capacity == 10.0
    assert fast.rates == [20.0, 10.0]
    assert search(System(0.5), upper=20.0, resolution=10.0, lower=1.0).first_failing == 1.0
