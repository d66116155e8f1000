"""The sweep grid: `--vary` parsing, combinations, the seeded order, and per-cell specs
loaded through the real spec loader (so a bad value is the loader's own error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.errors import SpecError
from scalelab.sweep.grid import Cell, expand, merge, parse_vary, run_order, section_values
from scalelab.sweep.plan import plan_sweep

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"


def test_vary_lists_and_ranges() -> None:
    vary = parse_vary(["workload.workers=1..3", "load.rate=4, 8,12", "load.duration=30s"])
    assert vary == {
        "workload.workers": ["1", "2", "3"],
        "load.rate": ["4", "8", "12"],
        "load.duration": ["30s"],
    }
    assert parse_vary(["load.rate=2..10..4"]) == {"load.rate": ["2", "6", "10"]}


@pytest.mark.parametrize("item", ["load.rate", "=3", "load.rate=", "load.rate=5..1"])
def test_bad_vary_is_a_spec_error(item: str) -> None:
    with pytest.raises(SpecError):
        parse_vary([item])


def test_every_combination_and_repetition_once() -> None:
    cells = expand({"a": ["1", "2"], "b": ["x", "y", "z"]}, repetitions=2)
    assert len(cells) == 12 == len({c.key for c in cells})
    assert {c.config for c in cells} == {f"a={a},b={b}" for a in "12" for b in "xyz"}
    assert Cell((("a", "1"), ("b", "x")), 2).overrides() == ["a=1", "b=x"]


def test_order_is_random_but_repeatable() -> None:
    cells = expand({"a": [str(i) for i in range(8)]}, repetitions=1)
    assert run_order(cells, 7) == run_order(cells, 7)
    assert run_order(cells, 7) != run_order(cells, 8)
    assert sorted(run_order(cells, 7), key=cells.index) == cells


def test_command_line_replaces_the_sections_values_for_a_field() -> None:
    section = section_values({"load.rate": [4, 8], "workload.workers": [1, 2]})
    assert merge(section, {"load.rate": ["6"]}) == {
        "load.rate": ["6"],
        "workload.workers": ["1", "2"],
    }
    assert section_values({"faults": [[{"kind": "kill-worker", "at": 5}]]})["faults"] == [
        '[{"kind": "kill-worker", "at": 5}]'
    ]


def test_a_bad_value_stops_the_sweep_before_any_run_with_the_field_named() -> None:
    with pytest.raises(SpecError) as error:
        plan_sweep(QUICKSTART, [], ["workload.workers=1,0"])
    (problem,) = error.value.problems
    assert problem.path == "workload.workers" and "greater than or equal to 1" in problem.message


def test_the_same_spec_and_grid_give_the_same_sweep_and_a_new_grid_a_new_one() -> None:
    first = plan_sweep(QUICKSTART, [], ["load.rate=2,4"], seed=1)
    again = plan_sweep(QUICKSTART, [], ["load.rate=2,4"], seed=5, repetitions=3)
    other = plan_sweep(QUICKSTART, [], ["load.rate=2,6"])
    changed = plan_sweep(QUICKSTART, ["load.duration=40s"], ["load.rate=2,4"])
    assert first.id == again.id
    assert len({first.id, other.id, changed.id}) == 3
    assert first.spec_for(first.cells()[0]).load.model_dump()["rate"] in (2, 4)
    assert [c.repetition for c in again.cells()].count(3) == 2
