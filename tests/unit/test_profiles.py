"""Rate profiles and send schedules: what a user relies on when they pick a load shape."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from scipy import stats

from scalelab.errors import ConfigError
from scalelab.load import config
from scalelab.load.config import DEFAULT_DIURNAL_CURVE, LoadSpec
from scalelab.load.profiles import (
    PROFILES,
    expected_messages,
    make_profile,
    mbps_to_msgs,
    messages_before,
    send_times,
    target_rate,
)
from scalelab.load.rates import PiecewiseRate

ADAPTER: TypeAdapter[Any] = TypeAdapter(LoadSpec)


def spec(**fields: Any) -> Any:
    return ADAPTER.validate_python(fields)


def schedule(
    base_dir: Path | None = None, frame_bytes: float | None = None, **fields: Any
) -> np.ndarray:
    profile = make_profile(spec(**fields), base_dir)
    return np.fromiter(send_times(profile, frame_bytes), dtype=float)


def assert_follows(
    times: np.ndarray, count_until: Callable[[float], float], duration: float
) -> None:
    """Messages sent before each whole second, and within each second, match the integral."""
    seconds = np.arange(0, int(np.ceil(duration)) + 1, dtype=float)
    sent = np.searchsorted(times, seconds, side="left")
    expected = np.array([count_until(s) for s in seconds])
    assert np.all(np.abs(sent - expected) <= 1), (sent, expected)
    assert np.all(np.abs(np.diff(sent) - np.diff(expected)) < 1 + 1e-9)
    assert np.all(np.diff(times) >= 0) and times.max() < duration


def test_constant_rate_sends_rate_times_duration_evenly_spaced() -> None:
    times = schedule(profile="constant", rate=50, duration=10)
    assert len(times) == 500
    assert times[0] == 0.0
    assert np.allclose(np.diff(times), 0.02)


def test_long_schedule_does_not_drift() -> None:
    profile = make_profile(spec(profile="constant", rate=1000, duration="1h"))
    millionth = next(islice(send_times(profile), 1_000_000, None))
    assert millionth == pytest.approx(1000.0, abs=1e-6)


def test_step_profile_pauses_on_zero_rate_and_holds_the_last_step() -> None:
    steps = [{"rate": 10, "duration": 2}, {"rate": 0, "duration": 3}, {"rate": 30, "duration": 1}]
    times = schedule(profile="step", steps=steps, duration=8)
    per_second = np.bincount(times.astype(int), minlength=8)
    assert per_second.tolist() == [10, 10, 0, 0, 0, 30, 30, 30]


def test_step_profile_cuts_steps_past_the_duration() -> None:
    steps = [{"rate": 4, "duration": "2s"}, {"rate": 8, "duration": "1m"}]
    times = schedule(profile="step", steps=steps, duration=3)
    assert np.bincount(times.astype(int)).tolist() == [4, 4, 8]


def test_ramp_integrates_the_linear_rate() -> None:
    times = schedule(profile="ramp", start_rate=0, end_rate=100, duration=10)
    assert_follows(times, lambda t: 5 * t * t, 10)
    assert len(times) == 500


def test_downward_ramp_to_zero() -> None:
    times = schedule(profile="ramp", start_rate=60, end_rate=0, duration=6)
    assert_follows(times, lambda t: 60 * t - 5 * t * t, 6)


def test_sine_integrates_the_wave() -> None:
    mean, amplitude, period = 50.0, 40.0, 10.0
    times = schedule(
        profile="sine", mean_rate=mean, amplitude=amplitude, period=period, duration=30
    )

    def count(t: float) -> float:
        return mean * t + amplitude * period / (2 * np.pi) * (1 - np.cos(2 * np.pi * t / period))

    assert_follows(times, count, 30)


def test_diurnal_one_step_per_hour_replays_the_curve() -> None:
    times = schedule(profile="diurnal", peak_rate=100, duration=48, cycles=2)
    per_second = np.bincount(times.astype(int), minlength=48)
    assert per_second.tolist() == list(DEFAULT_DIURNAL_CURVE) * 2


def test_diurnal_breakpoints_interpolate_between_hours() -> None:
    curve = [0.0] * 24
    curve[1] = 100.0
    profile = make_profile(
        spec(profile="diurnal", curve=curve, peak_rate=40, duration=24, breakpoints=96)
    )
    ticks = [profile.tick(t) for t in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)]
    assert ticks == pytest.approx([0, 10, 20, 30, 40, 20, 0])
    times = np.fromiter(send_times(profile), dtype=float)
    assert len(times) == expected_messages(profile) == 40


def test_poisson_mean_rate_and_exponential_gaps() -> None:
    times = schedule(profile="poisson", rate=200, duration=100, seed=7)
    assert abs(len(times) - 20_000) < 4 * np.sqrt(20_000)
    result = stats.kstest(np.diff(times), "expon", args=(0, 1 / 200))
    assert result.pvalue > 0.01
    assert times.max() < 100


def test_poisson_is_reproducible_per_seed() -> None:
    first = schedule(profile="poisson", rate=50, duration=10, seed=1)
    again = schedule(profile="poisson", rate=50, duration=10, seed=1)
    other = schedule(profile="poisson", rate=50, duration=10, seed=2)
    assert np.array_equal(first, again)
    assert not np.array_equal(first[:10], other[:10])


def test_trace_timestamps_are_replayed_exactly(tmp_path: Path) -> None:
    (tmp_path / "trace.csv").write_text("sent_at,size\n2.25,1\n0.0,1\n0.5,1\n0.51,1\n7.0,1\n")
    fields: dict[str, Any] = {
        "profile": "trace",
        "path": "trace.csv",
        "column": "sent_at",
        "duration": 5,
    }
    times = schedule(tmp_path, **fields)
    assert times.tolist() == [0.0, 0.5, 0.51, 2.25]
    profile = make_profile(spec(**fields), tmp_path)
    assert [profile.tick(t) for t in (0.3, 1.5, 2.9)] == [3, 0, 1]


def test_trace_rates_are_honoured_per_second(tmp_path: Path) -> None:
    (tmp_path / "rates.csv").write_text("5\n0\n12\n3\n")
    times = schedule(tmp_path, profile="trace", path="rates.csv", column_kind="rates", duration=6)
    assert np.bincount(times.astype(int), minlength=6).tolist() == [5, 0, 12, 3, 0, 0]


def test_trace_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.csv"):
        make_profile(spec(profile="trace", path="missing.csv"), tmp_path)
    (tmp_path / "bad.csv").write_text("t\n0.1\nsoon\n")
    with pytest.raises(ConfigError, match=r"bad\.csv.*'soon'"):
        make_profile(spec(profile="trace", path="bad.csv"), tmp_path)


def test_tick_gives_the_target_rate_then_none_at_the_end() -> None:
    profile = make_profile(spec(profile="sine", mean_rate=10, amplitude=5, period=4, duration=8))
    assert profile.tick(1.0) == pytest.approx(15.0)
    assert profile.tick(3.0) == pytest.approx(5.0)
    assert profile.tick(7.999) is not None
    assert profile.tick(8.0) is None
    assert profile.tick(100.0) is None
    steps = make_profile(spec(profile="step", steps=[{"rate": 1, "duration": 1}], duration=2))
    assert [steps.tick(0), steps.tick(1.5), steps.tick(2)] == [1, 1, None]


def test_mbps_unit_uses_the_mean_frame_size() -> None:
    assert mbps_to_msgs(2.0, 50_000) == 40.0
    times = schedule(frame_bytes=50_000, profile="constant", rate=2, unit="mbps", duration=5)
    assert len(times) == 200
    with pytest.raises(ConfigError, match="frame size"):
        schedule(profile="constant", rate=2, unit="mbps")


def test_max_mbps_ceiling_caps_every_profile() -> None:
    capped = schedule(frame_bytes=50_000, profile="constant", rate=100, max_mbps=1, duration=5)
    assert len(capped) == 100
    ramp = schedule(
        frame_bytes=50_000, profile="ramp", start_rate=0, end_rate=100, max_mbps=2.5, duration=10
    )
    assert_follows(ramp, lambda t: 5 * t * t if t <= 5 else 125 + 50 * (t - 5), 10)
    poisson = schedule(frame_bytes=100_000, profile="poisson", rate=500, max_mbps=2, duration=50)
    assert abs(len(poisson) - 1000) < 4 * np.sqrt(1000)
    profile = make_profile(spec(profile="constant", rate=100, max_mbps=1))
    assert target_rate(profile, 1.0, 50_000) == 20.0


def test_ceiling_spaces_out_trace_timestamps(tmp_path: Path) -> None:
    (tmp_path / "burst.csv").write_text("0\n0\n0\n0\n")
    times = schedule(tmp_path, 250_000, profile="trace", path="burst.csv", max_mbps=1)
    assert times.tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75])


@pytest.mark.parametrize(
    "fields",
    [
        {"profile": "constant", "rate": 20, "duration": 7},
        {"profile": "ramp", "start_rate": 3, "end_rate": 17, "duration": 9},
        {"profile": "sine", "mean_rate": 30, "amplitude": 30, "period": 3, "duration": 10},
        {"profile": "diurnal", "peak_rate": 13, "duration": 60, "cycles": 2.5, "breakpoints": 7},
    ],
)
def test_expected_messages_matches_deterministic_schedules(fields: dict[str, Any]) -> None:
    profile = make_profile(spec(**fields))
    assert expected_messages(profile) == len(list(send_times(profile)))


def test_registry_covers_every_profile_of_the_spec() -> None:
    tags = {get_args(model.model_fields["profile"].annotation)[0] for model in _load_models()}
    assert set(PROFILES) == tags


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"profile": "zigzag", "rate": 1}, "does not match any of the expected tags"),
        ({"profile": "constant", "rate": -5}, "greater than 0"),
        ({"profile": "constant", "rate": 5, "burst": 2}, "Extra inputs are not permitted"),
        ({"profile": "constant", "rate": 5, "duration": "soon"}, "expected a duration"),
        ({"profile": "constant", "rate": 5, "duration": 10, "warmup": "10s"}, "warmup"),
        ({"profile": "sine", "mean_rate": 5, "amplitude": 6, "period": 1}, "amplitude"),
        ({"profile": "step", "steps": [{"rate": 0, "duration": 1}]}, "above 0"),
        ({"profile": "diurnal", "peak_rate": 5, "curve": [50] * 23}, "at least 24"),
        ({"profile": "trace", "path": "t.csv", "unit": "mbps"}, "unit 'msgs'"),
        ({"profile": "poisson", "rate": 5, "producers": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_load_specs_are_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_every_spec_field_is_described() -> None:
    models: list[type[BaseModel]] = [*_load_models(), config.Step]
    for model in models:
        for name, properties in model.model_json_schema()["properties"].items():
            assert properties.get("description"), f"{model.__name__}.{name}"


def _load_models() -> list[type[BaseModel]]:
    return [
        config.ConstantLoad,
        config.StepLoad,
        config.RampLoad,
        config.SineLoad,
        config.DiurnalLoad,
        config.PoissonLoad,
        config.TraceLoad,
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"profile": "constant", "rate": 20, "duration": 7, "warmup": 2},
        {"profile": "ramp", "start_rate": 3, "end_rate": 17, "duration": 9, "warmup": 2.5},
        {"profile": "ramp", "start_rate": 60, "end_rate": 0, "duration": 6, "warmup": 1},
        {"profile": "sine", "mean_rate": 30, "amplitude": 30, "period": 3, "duration": 10},
        {"profile": "diurnal", "peak_rate": 13, "duration": 60, "cycles": 2.5, "breakpoints": 7},
        {
            "profile": "step",
            "steps": [
                {"rate": 10, "duration": 2},
                {"rate": 0, "duration": 3},
                {"rate": 30, "duration": 1},
            ],
            "duration": 8,
            "warmup": 5,
        },
    ],
)
def test_messages_before_counts_the_schedule_without_generating_it(fields: dict[str, Any]) -> None:
    profile = make_profile(spec(**fields))
    times = np.fromiter(send_times(profile), dtype=float)
    for offset in [0.0, 0.5, 1.0, 2.0, 2.5, 3.3, 5.0, profile.duration / 2, profile.duration, 99.0]:
        assert messages_before(profile, offset) == np.count_nonzero(times < offset), offset


def test_messages_before_a_trace_and_a_poisson_load(tmp_path: Path) -> None:
    (tmp_path / "burst.csv").write_text("0\n0\n0\n0\n3\n")
    trace = make_profile(spec(profile="trace", path="burst.csv", max_mbps=1, duration=5), tmp_path)
    assert [messages_before(trace, t, 250_000) for t in (0.5, 1.0, 4.0)] == [2, 4, 5]
    poisson = make_profile(spec(profile="poisson", rate=200, duration=100, seed=7))
    drawn = np.fromiter(send_times(poisson), dtype=float)
    assert abs(messages_before(poisson, 50.0) - np.count_nonzero(drawn < 50)) < 4 * np.sqrt(10_000)


def test_an_infinite_rate_is_a_config_error_not_a_crash() -> None:
    pieces = PiecewiseRate.steps([0.0, 10.0], [math.inf])
    with pytest.raises(ConfigError, match="not finite"):
        next(pieces.times())
