"""``bcdrill watch``: journal records folded into a live view (pure), and the journal tail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from drills.desk.watch import JournalTail, WatchState, render


def _rec(seq: int, type_: str, t: float, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "type": type_, "t": t, "at": f"2026-01-01T00:00:{t:06.3f}Z", "data": data}


STARTED = _rec(
    0,
    "run.started",
    0.0,
    run_id="r1",
    playbook={"title": "Storefront down"},
    scoring={"late_limit": 3},
    steps=[
        {"key": "msp.ack", "party": "msp", "title": "Acknowledge", "within_s": 10.0},
        {"key": "msp.fix", "party": "msp", "title": "Fix", "within_s": 20.0},
        {"key": "client.report", "party": "client", "title": "Report", "within_s": 5.0},
    ],
    faults=[{"id": "stop-web", "action": "docker.stop", "target": "storefront"}],
)


def _text(state: WatchState, now: float) -> str:
    console = Console(record=True, width=160)
    console.print(render(state, now))
    return console.export_text()


def test_state_follows_the_drill() -> None:
    state = WatchState()
    for record in (
        STARTED,
        _rec(1, "fault.intent", 1.0, fault="stop-web"),
        _rec(2, "fault.applied", 1.2, fault="stop-web"),
        _rec(3, "probe.changed", 1.3, probe="storefront", state="down"),
        _rec(4, "step.recorded", 9.2, step="msp.ack", by="Alex Moreau", source="desk"),
        _rec(5, "step.recorded", 13.2, step="client.report", by="Priya Shah", source="webhook"),
    ):
        state.apply(record)
    assert state.anchor == 1.2 and state.faults["stop-web"].state == "active"
    assert state.step_status(state.steps["msp.ack"], 20.0) == ("on time", pytest.approx(8.0))
    assert state.step_status(state.steps["client.report"], 20.0)[0] == "late"
    assert state.step_status(state.steps["msp.fix"], 30.0)[0] == "overdue"
    assert state.step_status(state.steps["msp.fix"], 62.0)[0] == "missed"
    text = _text(state, 20.0)
    assert "Alex Moreau (desk)" in text and "Priya Shah (webhook)" in text and "storefront" in text
    state.apply(_rec(6, "fault.reverted", 21.0, fault="stop-web"))
    state.apply(_rec(7, "run.ended", 22.0, reason="completed"))
    assert state.ended == "completed" and state.now() == 22.0
    assert "ENDED: completed" in _text(state, state.now())


def test_an_evaluators_correction_moves_a_step_in_the_watch() -> None:
    state = WatchState()
    for record in (
        STARTED,
        _rec(1, "fault.applied", 1.0, fault="stop-web"),
        _rec(2, "step.recorded", 4.0, step="msp.fix", by="Alex Moreau", source="desk"),
        _rec(3, "step.corrected", 9.0, step="msp.fix", record=2, to="msp.ack", by="Eve"),
        _rec(4, "step.recorded", 9.0, step="msp.ack", by="Alex Moreau", source="evaluator", acted_t=4.0),
    ):
        state.apply(record)
    assert state.steps["msp.fix"].recorded_t is None
    assert state.step_status(state.steps["msp.fix"], 10.0)[0] not in ("on time", "late")
    assert state.steps["msp.ack"].recorded_t == 4.0 and state.steps["msp.ack"].source == "evaluator"


def test_before_the_fault_steps_are_waiting() -> None:
    state = WatchState()
    state.apply(STARTED)
    assert state.step_status(state.steps["msp.ack"], 5.0) == ("waiting", None)


def test_tail_reads_only_complete_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    tail = JournalTail(path)
    assert tail.read_new() == []
    line = json.dumps(STARTED)
    path.write_text(line + "\n" + line[:20])
    assert [r["type"] for r in tail.read_new()] == ["run.started"]
    with open(path, "a") as handle:
        handle.write(line[20:] + "\n")
    assert [r["seq"] for r in tail.read_new()] == [0]
    assert tail.read_new() == []
