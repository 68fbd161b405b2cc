"""The figures that have a Chaos Toolkit twin, printed side by side with their ratio.

Overhead figures are stored beyond the raw floor (the scenario's own waits); the table adds the
floor back, so the ratio compares what a user waits for — the whole process — as the issue's
goals do ("wall ≤ 1.5× Chaos Toolkit's").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PAIRS", "side_by_side"]

FLOOR = "raw scenario (docker SDK, the floor)"
RUNNER_FLOOR = "runner: raw scenario (the floor)"  # the runner family measures its own
# (what, bcdrill figure, Chaos Toolkit figure, add the floor back, goal as a ratio)
PAIRS: tuple[tuple[str, str, str, bool, float | None], ...] = (
    (
        "one-shot run, wall (local server)",
        "cold: bcdrill run (local server), beyond",
        "cold: chaos run, beyond the floor",
        True,
        1.5,
    ),
    (
        "one-shot run, wall (ephemeral Prefect)",
        "cold: bcdrill run (ephemeral Prefect), beyond",
        "cold: chaos run, beyond the floor",
        True,
        3.0,
    ),
    (
        "one-shot run, wall (warm local runner)",
        "runner: bcdrill run (warm runner), beyond",
        "runner: chaos run, beyond the floor",
        True,
        1.5,
    ),
    (
        "one-shot run, wall (first: starts the runner)",
        "runner: first bcdrill run (starts the runner), beyond",
        "runner: chaos run, beyond the floor",
        True,
        3.0,
    ),
    (
        "warm drill, wall (served flow)",
        "warm: drill-run flow (served), beyond",
        "warm: chaoslib run_experiment, beyond",
        True,
        None,
    ),
    (
        "warm drill, wall (no Prefect)",
        "warm: DrillRun.execute (no Prefect), beyond",
        "warm: chaoslib run_experiment, beyond",
        True,
        None,
    ),
    ("validate, wall", "validate: bcdrill validate, wall", "validate: chaos validate, wall", False, 2.0),
    (
        "validate, CPU (user + system)",
        "validate: bcdrill validate, CPU",
        "validate: chaos validate, CPU",
        False,
        None,
    ),
)


def _medians(figures: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, str]]:
    out = {}
    for fig in figures:
        median = fig["stats"]["median"]
        if median is not None:
            out[str(fig["name"])] = (float(median), str(fig["unit"]))
    return out


def _seconds(value: float, unit: str) -> float:
    return value / 1000.0 if unit == "ms" else value


def side_by_side(figures: Sequence[Mapping[str, Any]]) -> list[str]:
    """Table lines: bcdrill, Chaos Toolkit, ratio and goal for every pair measured in this run."""
    medians = _medians(figures)
    rows = []
    for what, ours_name, theirs_name, add_floor, goal in PAIRS:
        floor = medians.get(RUNNER_FLOOR if ours_name.startswith("runner:") else FLOOR)
        if ours_name not in medians or theirs_name not in medians or (add_floor and floor is None):
            continue
        ours, theirs = (_seconds(*medians[ours_name]), _seconds(*medians[theirs_name]))
        if add_floor and floor is not None:
            ours, theirs = ours + _seconds(*floor), theirs + _seconds(*floor)
        ratio = ours / theirs if theirs > 0 else float("inf")
        verdict = "" if goal is None else f"≤ {goal:g}× {'met' if ratio <= goal else 'MISSED'}"
        rows.append(f"{what:40} {ours:>9.3f} s {theirs:>9.3f} s {ratio:>7.1f}×  {verdict}".rstrip())
    if not rows:
        return []
    header = f"{'side by side (medians)':40} {'bcdrill':>11} {'Chaos Tk':>11} {'ratio':>8}  goal"
    return ["", header, *rows]
