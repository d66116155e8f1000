"""Export from Prometheus to Parquet, against Prometheus's HTTP API emulated in-process."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalelab.errors import ConfigError
from scalelab.export.gaps import Gap, find_gaps
from scalelab.export.parquet import SCHEMA
from scalelab.export.prometheus import (
    ExportResult,
    MetricQuery,
    Window,
    export_window,
    parse_time,
    plan_segments,
)
from scalelab.export.promjson import ResponseError, parse_matrix
from scalelab.export.segments import plan_spans

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
_SELECTOR = re.compile(r'^\{__name__="([^"]+)"\}$|^(\w+)$')
_RAW = re.compile(r"^(.+)\[(\d+)ms\]$")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- time parsing and windows -------------------------------------------------------------


def test_parse_time_accepts_z_offsets_and_epoch_seconds() -> None:
    assert parse_time("2026-11-22T09:00:00Z") == T0
    assert parse_time("2026-11-22T10:00:00+01:00") == T0
    assert parse_time("2026-11-22T04:30:00-04:30") == T0
    assert parse_time(str(int(T0.timestamp()))) == T0
    assert parse_time(f"{int(T0.timestamp())}.250") == at(0.25)
    assert parse_time("2026-11-22T10:00:00+01:00").tzinfo == UTC


@pytest.mark.parametrize("naive", ["2026-11-22T09:00:00", "2026-11-22 09:00", "2026-11-22"])
def test_parse_time_rejects_a_time_without_offset(naive: str) -> None:
    with pytest.raises(ConfigError, match="no UTC offset"):
        parse_time(naive)


def test_parse_time_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match="RFC 3339"):
        parse_time("yesterday at nine")


def test_window_is_held_in_utc_and_checked() -> None:
    paris = timezone(timedelta(hours=1))
    window = Window(
        datetime(2026, 11, 22, 10, tzinfo=paris), datetime(2026, 11, 22, 11, tzinfo=paris)
    )
    assert window.start == T0 and window.start.tzinfo == UTC
    assert window.to_dict() == {"start": "2026-11-22T09:00:00Z", "end": "2026-11-22T10:00:00Z"}
    with pytest.raises(ConfigError, match="no UTC offset"):
        Window(datetime(2026, 11, 22, 9), T0)
    with pytest.raises(ConfigError, match="before it starts"):
        Window(at(10), at(0))


# --- segment planning ---------------------------------------------------------------------


def grid(window: Window, step: float) -> list[datetime]:
    """Every multiple of step since the epoch inside the window, the points Prometheus gives."""
    step_us = round(step * 1_000_000)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = -(-((window.start - epoch) // timedelta(microseconds=1)) // step_us)
    last = ((window.end - epoch) // timedelta(microseconds=1)) // step_us
    return [epoch + timedelta(microseconds=k * step_us) for k in range(first, last + 1)]


@pytest.mark.parametrize(
    ("start", "end", "step", "max_points"),
    [
        (0, 3600, 1, 10_000),
        (0.4, 7_200.7, 1, 1_000),
        (0, 86_400, 15, 11_000),
        (3, 100, 0.5, 7),
        (0, 59, 1, 60),
        (0, 60, 1, 60),
        (7, 7, 1, 10),
    ],
)
def test_segments_cover_the_window_exactly_once(
    start: float, end: float, step: float, max_points: int
) -> None:
    window = Window(at(start), at(end))
    segments = plan_segments(window, step, max_points)
    points = [p for seg in segments for p in grid(seg, step)]
    assert points == grid(window, step)  # everything, in order, nothing twice
    for seg in segments:
        assert len(grid(seg, step)) <= max_points
        assert grid(seg, step)[0] == seg.start and grid(seg, step)[-1] == seg.end  # aligned
    for before, after in zip(segments, segments[1:], strict=False):
        assert after.start - before.end == timedelta(seconds=step)


def test_segments_are_as_few_as_the_limit_allows() -> None:
    assert len(plan_segments(Window(at(0), at(86_399)), 1, 10_000)) == 9
    assert len(plan_segments(Window(at(0), at(9_999)), 1, 10_000)) == 1
    assert len(plan_segments(Window(at(0), at(10_000)), 1, 10_000)) == 2


def test_a_window_between_two_steps_has_no_segment() -> None:
    assert plan_segments(Window(at(1), at(14)), 15) == []


@pytest.mark.parametrize(("start", "end", "span"), [(0, 99, 30), (0.0004, 10.9996, 2.5), (5, 5, 1)])
def test_spans_cover_every_millisecond_once(start: float, end: float, span: float) -> None:
    window = Window(at(start), at(end))
    spans = plan_spans(window, span)
    assert spans[0].start >= window.start and spans[-1].end <= window.end
    assert spans[0].start - window.start < timedelta(milliseconds=1)
    assert window.end - spans[-1].end < timedelta(milliseconds=1)
    for before, after in zip(spans, spans[1:], strict=False):
        assert after.start - before.end == timedelta(milliseconds=1)
    assert all(s.seconds <= span for s in spans)


def test_segment_limits_are_checked() -> None:
    with pytest.raises(ConfigError, match="11000"):
        plan_segments(Window(at(0), at(10)), 1, 11_001)
    with pytest.raises(ConfigError, match="1 ms"):
        plan_segments(Window(at(0), at(10)), 0.0001)


# --- an in-process Prometheus -------------------------------------------------------------


@dataclass
class Series:
    """Sampled every second, on whole seconds, except inside ``holes`` (seconds after T0)."""

    labels: dict[str, str]
    value: Callable[[float], float] = lambda t: t % 7
    holes: list[tuple[float, float]] = field(default_factory=list)

    def stored(self, times: np.ndarray) -> np.ndarray:
        """The times at which Prometheus holds a sample."""
        kept = np.ones(times.size, dtype=bool)
        for start, end in self.holes:
            kept &= (times < at(start).timestamp()) | (times > at(end).timestamp())
        return times[kept]


@dataclass
class FakePrometheus:
    """Serves raw range-vector queries, query_range and label values.

    Raw queries (``/api/v1/query`` with ``selector[Nms]``) return the stored samples in
    ``[time - N, time]``, both ends included as Prometheus 2 does. ``query_range``
    evaluates on its grid with a lookback: a grid point inside a hole repeats the last
    stored value, as Prometheus does for up to five minutes. ``faults`` maps a metric
    name to the statuses its next answers get (then 200); ``broken`` names always get
    ``broken_status``.
    """

    series: list[Series]
    faults: dict[str, list[int]] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    broken_status: int = 503
    requests: Counter[str] = field(default_factory=Counter)
    slop: float = 0.0
    """Seconds a raw answer reaches beyond its range on both sides (a sloppy server)."""

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        self.requests[request.url.path] += 1
        if request.url.path == "/api/v1/label/__name__/values":
            names = sorted({s.labels["__name__"] for s in self.series})
            return httpx.Response(200, json={"status": "success", "data": names})
        assert request.url.path in ("/api/v1/query", "/api/v1/query_range")
        assert request.headers["accept-encoding"] == "identity"
        raw = request.url.path == "/api/v1/query"
        selector, span_ms = _RAW.match(params["query"]).groups() if raw else (params["query"], 0)  # type: ignore[union-attr]
        name = next(g for g in _SELECTOR.match(selector).groups() if g)  # type: ignore[union-attr]
        self.requests[name] += 1
        if name in self.broken:
            return _error(self.broken_status, "boom")
        if self.faults.get(name):
            return _error(self.faults[name].pop(0), "try later")
        if raw:
            end = float(params["time"])
            start = end - int(span_ms) / 1000
            return httpx.Response(200, content=self.raw(name, start - self.slop, end + self.slop))
        start, end, step = (float(params[k]) for k in ("start", "end", "step"))
        return httpx.Response(200, content=self.matrix(name, start, end, step))

    def raw(self, name: str, start: float, end: float) -> bytes:
        seconds = np.arange(np.ceil(start), np.floor(end) + 1)
        return _body(
            (s.labels, [(t, s.value(t)) for t in s.stored(seconds).tolist()])
            for s in self.series
            if s.labels["__name__"] == name
        )

    def matrix(self, name: str, start: float, end: float, step: float) -> bytes:
        stamps = np.arange(start, end + step / 2, step)
        result = []
        for s in (s for s in self.series if s.labels["__name__"] == name):
            stored = s.stored(np.arange(np.floor(start) - 300, np.floor(end) + 1))
            latest = np.searchsorted(stored, stamps, side="right") - 1
            points = zip(stamps.tolist(), latest.tolist(), strict=True)
            result.append((s.labels, [(t, s.value(float(stored[i]))) for t, i in points if i >= 0]))
        return _body(result)


def _body(result: Any) -> bytes:
    series = [
        {"metric": labels, "values": [[t, _text(v)] for t, v in points]}
        for labels, points in result
        if points
    ]
    body = {"status": "success", "data": {"resultType": "matrix", "result": series}}
    return json.dumps(body, separators=(",", ":")).encode()


def _text(value: float) -> str:
    return {np.inf: "+Inf", -np.inf: "-Inf"}.get(value, repr(value))


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"status": "error", "errorType": "internal", "error": message}
    )


def _export(prom: FakePrometheus, window: Window, out: Path, **options: Any) -> ExportResult:
    options = {"step": 1.0, "backoff": 0.0, **options}
    return export_window(
        "http://prometheus.test", window, out, transport=prom.transport(), **options
    )


CPU = Series({"__name__": "cpu", "instance": "n1:9100", "job": "node", "mode": "idle"})
CPU2 = Series({"__name__": "cpu", "instance": "n2:9100", "job": "node", "mode": "idle"})
RATE = Series(
    {"__name__": "scalelab_rate", "component": "producer", "run_id": "r1"}, lambda t: t / 3
)


# --- export -------------------------------------------------------------------------------


def test_export_writes_every_point_once_in_long_format(tmp_path: Path) -> None:
    prom = FakePrometheus([CPU, CPU2, RATE])
    out = tmp_path / "metrics.parquet"
    seen: list[tuple[int, int]] = []
    window = Window(at(0), at(99))
    result = _export(
        prom, window, out, segment_points=30, progress=lambda d, t: seen.append((d, t))
    )

    assert result.complete and result.failed == []
    # 2 names × 4 spans, and the 4 spans of the scrape record (up)
    assert (result.series, result.points, result.requests) == (3, 300, 12)
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    table = pq.read_table(out)
    assert table.schema == SCHEMA and table.num_rows == 300
    assert pa.types.is_dictionary(table.schema.field("labels").type)
    rows = table.to_pylist()
    keys = Counter((r["metric"], r["labels"], r["timestamp"]) for r in rows)
    assert max(keys.values()) == 1  # no duplicated boundary samples
    cpu2 = [r for r in rows if r["instance"] == "n2:9100"]
    assert [r["timestamp"] for r in cpu2] == [at(s) for s in range(100)]
    assert cpu2[0]["timestamp"].tzinfo is not None and cpu2[0][
        "timestamp"
    ].utcoffset() == timedelta(0)
    assert cpu2[0]["labels"] == '{"instance":"n2:9100","job":"node","mode":"idle"}'
    assert (cpu2[0]["metric"], cpu2[0]["job"], cpu2[0]["component"]) == ("cpu", "node", None)
    rate = [r for r in rows if r["metric"] == "scalelab_rate"]
    assert rate[30]["value"] == pytest.approx(RATE.value(at(30).timestamp()))
    assert (rate[0]["component"], rate[0]["run_id"], rate[0]["instance"]) == (
        "producer",
        "r1",
        None,
    )


def test_result_is_json_serialisable(tmp_path: Path) -> None:
    result = _export(FakePrometheus([CPU]), Window(at(0), at(9)), tmp_path / "m.parquet")
    record = json.loads(json.dumps(result.to_dict()))
    assert record["complete"] is True and record["points"] == 10 and record["series"] == 1
    assert record["window"] == {"start": "2026-11-22T09:00:00Z", "end": "2026-11-22T09:00:09Z"}


def test_a_503_is_retried_then_succeeds(tmp_path: Path) -> None:
    prom = FakePrometheus([CPU], faults={"cpu": [503, 429]})
    result = _export(prom, Window(at(0), at(9)), tmp_path / "m.parquet", retries=3)
    assert result.complete and result.points == 10
    assert prom.requests["cpu"] == 3


def test_connect_errors_are_retried(tmp_path: Path) -> None:
    prom = FakePrometheus([CPU])
    failures = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("query_range") and failures:
            raise failures.pop(0)
        return prom.handle(request)

    result = export_window(
        "http://prometheus.test",
        Window(at(0), at(9)),
        tmp_path / "m.parquet",
        step=1,
        backoff=0,
        transport=httpx.MockTransport(flaky),
    )
    assert result.complete and result.points == 10


def test_a_segment_that_keeps_failing_is_recorded_not_dropped(tmp_path: Path) -> None:
    prom = FakePrometheus([CPU, RATE], broken={"cpu"})
    out = tmp_path / "m.parquet"
    result = _export(prom, Window(at(0), at(49)), out, retries=2, segment_points=25)

    assert not result.complete
    assert prom.requests["cpu"] == 6  # 2 segments × (1 + 2 retries)
    assert [(f.metric, f.start, f.end) for f in result.failed] == [
        ("cpu", at(0), at(24.999)),
        ("cpu", at(25), at(49)),
    ]
    assert "HTTP 503" in result.failed[0].error and "boom" in result.failed[0].error
    assert "3 attempts" in result.failed[0].error
    assert "2 of 6 requests failed" in result.message  # 2 + 2 spans, and up's 2
    assert result.to_dict()["failed"][0]["start"] == "2026-11-22T09:00:00Z"
    assert pq.read_table(out).num_rows == 50  # the other metric is still there


def test_a_client_error_is_not_retried(tmp_path: Path) -> None:
    prom = FakePrometheus([CPU], broken={"cpu"}, broken_status=422)
    result = _export(prom, Window(at(0), at(9)), tmp_path / "m.parquet", retries=3)
    assert prom.requests["cpu"] == 1
    assert not result.complete and result.failed[0].error == "HTTP 422: internal: boom"


def test_discovery_failure_makes_an_incomplete_empty_export(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda request: _error(500, "tsdb closed"))
    result = export_window(
        "http://prometheus.test",
        Window(at(0), at(9)),
        tmp_path / "m.parquet",
        step=1,
        retries=1,
        backoff=0,
        transport=transport,
    )
    assert not result.complete and "could not list the metric names" in result.message
    assert "tsdb closed" in result.failed[0].error
    assert pq.read_table(tmp_path / "m.parquet").num_rows == 0


def test_an_empty_window_writes_an_empty_table(tmp_path: Path) -> None:
    out = tmp_path / "empty.parquet"
    result = _export(FakePrometheus([]), Window(at(0), at(3600)), out)
    assert result.complete and (result.series, result.points) == (0, 0)
    assert "no series" in result.message
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.schema == SCHEMA


def test_named_queries_use_their_name_and_step(tmp_path: Path) -> None:
    prom = FakePrometheus([CPU, RATE])
    queries = [
        MetricQuery("node_cpu", '{__name__="cpu"}', step=10),
        MetricQuery("rate", '{__name__="scalelab_rate"}'),
    ]
    out = tmp_path / "m.parquet"
    result = _export(prom, Window(at(0), at(59)), out, queries=queries)
    assert prom.requests["/api/v1/label/__name__/values"] == 0
    assert result.points == 6 + 60
    counts = Counter(pq.read_table(out).column("metric").to_pylist())
    assert counts == {"node_cpu": 6, "rate": 60}
    first = pq.read_table(out).to_pylist()[0]
    assert json.loads(first["labels"])["__name__"] == "cpu"  # kept: it differs from the name


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="http"):
        export_window("localhost:9090", Window(at(0), at(1)), tmp_path / "m.parquet", step=1)
    with pytest.raises(ConfigError, match="concurrency"):
        export_window(
            "http://p.test", Window(at(0), at(1)), tmp_path / "m.parquet", step=1, concurrency=0
        )
    with pytest.raises(ConfigError, match="segment points"):
        _export(
            FakePrometheus([CPU]), Window(at(0), at(1)), tmp_path / "m.parquet", segment_points=0
        )
    with pytest.raises(ConfigError, match="1 ms"):
        _export(FakePrometheus([CPU]), Window(at(0), at(1)), tmp_path / "m.parquet", step=1e-4)


# --- holes in Prometheus's data -----------------------------------------------------------

DOWN = [(30.0, 45.0)]
"""Prometheus was dead from 0:30 to 0:45: no scrape, no sample of anything."""
UP = Series({"__name__": "up", "instance": "n1:9100", "job": "node"}, lambda t: 1.0, DOWN)
CPU_DOWN = Series(CPU.labels, CPU.value, DOWN)


def in_hole(path: Path) -> list[datetime]:
    stamps = pq.read_table(path, columns=["timestamp"]).column("timestamp").to_pylist()
    return [t for t in stamps if at(29) < t < at(46)]


def test_a_hole_stays_empty_in_raw_samples_and_makes_the_export_incomplete(
    tmp_path: Path,
) -> None:
    out = tmp_path / "m.parquet"
    result = _export(FakePrometheus([UP, CPU_DOWN]), Window(at(0), at(99)), out)
    assert in_hole(out) == []
    assert result.points == 2 * (100 - 16)
    assert result.gaps == [Gap(at(29), at(46))] and not result.complete
    assert result.to_dict()["gaps"] == [
        {"start": "2026-11-22T09:00:29Z", "end": "2026-11-22T09:00:46Z", "seconds": 17.0}
    ]
    assert "scraped nothing 09:00:29–09:00:46 (17 s)" in result.message
    assert "incomplete" in result.message


def test_named_queries_lose_the_points_lookback_invents_in_a_hole(tmp_path: Path) -> None:
    prom = FakePrometheus([UP, CPU_DOWN])
    query = [MetricQuery("node_cpu", '{__name__="cpu"}')]
    grid = parse_matrix(prom.matrix("cpu", at(0).timestamp(), at(99).timestamp(), 1))
    assert grid.points == 100  # the grid query repeats the last value through the hole
    out = tmp_path / "m.parquet"
    result = _export(prom, Window(at(0), at(99)), out, queries=query)
    assert in_hole(out) == [] and result.points == 100 - 16
    assert not result.complete and len(result.gaps) == 1


def test_a_hole_at_the_end_of_the_expected_scraping_counts(tmp_path: Path) -> None:
    up = Series(UP.labels, UP.value, [(80.0, 200.0)])  # Prometheus died at 0:80 for good
    result = _export(
        FakePrometheus([up]),
        Window(at(0), at(99)),
        tmp_path / "m.parquet",
        expect=Window(at(5), at(95)),
    )
    assert result.gaps == [Gap(at(79), at(95))]
    no_expectation = _export(FakePrometheus([up]), Window(at(0), at(99)), tmp_path / "n.parquet")
    assert no_expectation.complete  # between its first and last scrape there is no hole


def test_named_queries_invent_nothing_after_prometheus_died_for_good(tmp_path: Path) -> None:
    """Dead from 0:80 on: grid points up to the window's end would repeat the 0:79 value."""
    up = Series(UP.labels, UP.value, [(80.0, 200.0)])
    cpu = Series(CPU.labels, CPU.value, [(80.0, 200.0)])
    query = [MetricQuery("node_cpu", '{__name__="cpu"}')]
    out = tmp_path / "m.parquet"
    _export(
        FakePrometheus([up, cpu]),
        Window(at(0), at(99)),
        out,
        queries=query,
        expect=Window(at(5), at(95)),
    )
    stamps = pq.read_table(out).column("timestamp").to_pylist()
    assert max(stamps) == at(79) and len(stamps) == 80


def test_a_sample_on_a_span_boundary_is_written_once(tmp_path: Path) -> None:
    prom = FakePrometheus([CPU], slop=1.0)  # every answer repeats its neighbours' edge samples
    out = tmp_path / "m.parquet"
    result = _export(prom, Window(at(0), at(59)), out, segment_points=10)
    stamps = pq.read_table(out).column("timestamp").to_pylist()
    assert stamps == [at(s) for s in range(60)] and result.points == 60


def test_find_gaps_against_the_limit_and_the_expected_window() -> None:
    ns = np.array([0, 1, 2, 10, 11], dtype=np.int64) * 1_000_000_000 + int(T0.timestamp() * 1e9)
    assert find_gaps(ns, 3.0) == [Gap(at(2), at(10))]
    assert find_gaps(ns, 8.0) == []
    assert find_gaps(ns, 3.0, Window(at(-5), at(20))) == [
        Gap(at(-5), at(0)),
        Gap(at(2), at(10)),
        Gap(at(11), at(20)),
    ]
    assert find_gaps(np.empty(0, dtype=np.int64), 3.0, Window(at(0), at(9))) == [Gap(at(0), at(9))]
    assert find_gaps(np.empty(0, dtype=np.int64), 3.0) == []


# --- decoding answers ---------------------------------------------------------------------


def test_decoding_handles_special_values_and_awkward_labels() -> None:
    tricky = {"__name__": "m", "note": 'say "values":[[1,"2"]] twice ]]'}
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": tricky, "values": [[1.5, "NaN"], [2.25, "+Inf"], [3, "-Inf"]]},
                {"metric": {"__name__": "m"}, "values": []},
                {"metric": {"__name__": "m", "a": "b"}, "values": [[1795313900.123, "1e-05"]]},
            ],
        },
    }
    for text in (json.dumps(body), json.dumps(body, indent=2)):
        block = parse_matrix(text.encode())
        assert block.labels[0] == tricky
        assert block.counts.tolist() == [3, 0, 1]
        assert block.timestamps_ns.tolist() == [
            1_500_000_000,
            2_250_000_000,
            3_000_000_000,
            1_795_313_900_123_000_000,
        ]
        assert np.isnan(block.values[0]) and block.values[1:].tolist() == [np.inf, -np.inf, 1e-05]


def test_decoding_rejects_errors_and_other_result_types() -> None:
    with pytest.raises(ResponseError, match="bad_data"):
        parse_matrix(b'{"status":"error","errorType":"bad_data","error":"bad_data: parse error"}')
    with pytest.raises(ResponseError, match="vector"):
        parse_matrix(b'{"status":"success","data":{"resultType":"vector","result":[]}}')
    with pytest.raises(ResponseError, match="not JSON"):
        parse_matrix(b"<html>proxy error</html>")
