"""The side-by-side table: ratios of whole-process walls, floor added back, goals checked."""

from __future__ import annotations

from typing import Any

from benchmarks.sidebyside import FLOOR, side_by_side


def fig(name: str, median: float, unit: str = "s") -> dict[str, Any]:
    return {"name": name, "unit": unit, "stats": {"median": median}}


def test_ratio_of_walls_with_the_floor_added_back() -> None:
    lines = side_by_side(
        [
            fig(FLOOR, 1.5),
            fig("cold: bcdrill run (local server), beyond", 1.5),
            fig("cold: chaos run, beyond the floor", 0.5),
            fig("validate: bcdrill validate, wall", 300, "ms"),
            fig("validate: chaos validate, wall", 200, "ms"),
        ]
    )
    run = next(line for line in lines if line.startswith("one-shot run, wall (local server)"))
    assert "3.000 s" in run and "2.000 s" in run and "1.5×" in run and "met" in run
    validate = next(line for line in lines if line.startswith("validate, wall"))
    assert "0.300 s" in validate and "1.5×" in validate and "≤ 2× met" in validate


def test_missed_goal_and_missing_twin() -> None:
    lines = side_by_side(
        [
            fig(FLOOR, 1.0),
            fig("cold: bcdrill run (local server), beyond", 3.0),
            fig("cold: chaos run, beyond the floor", 0.0),
            fig("warm: drill-run flow (served), beyond", 0.2),
        ]
    )
    assert any("4.0×" in line and "MISSED" in line for line in lines)
    assert not any(line.startswith("warm drill") for line in lines)  # no chaoslib figure this run
    assert side_by_side([]) == []
