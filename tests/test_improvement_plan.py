"""An improvement plan people can manage: specific actions, named owners, due dates, changes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from engine.errors import InputError
from engine.record.records import RecordType
from reports.debrief_writer import ImprovementStore, debrief_of_run, write_debrief
from reports.improvements import apply_change, plan_rows
from reports.improvements_commands import register
from reports.renderers import RenderOptions, render_text
from reports.testing import ScriptedRun, run_started, step

CLIENT = "Shanghai Bakery"
STEPS = (
    step("msp", "acknowledge", 120, title="Acknowledge the alert"),
    step("client", "paper_orders", 1200, title="Start the paper order process"),
)
PEOPLE = (
    ("Alex Moreau", "msp", "on-call engineer"),
    ("Priya Shah", "client", "shop manager"),
    ("Mei Chen", "client", "sponsor"),
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BCDRILL_RUNS", raising=False)
    return tmp_path / "home"


def drill(runs: Path, run_id: str, start: datetime, ack: float | None, orders: float) -> Path:
    data = run_started(run_id=run_id, steps=STEPS, rto_s=None, participants=PEOPLE)
    data["environment"]["client"] = CLIENT
    run = ScriptedRun(runs / run_id, start=start)
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    for offset, key in sorted(
        [(orders, "client.paper_orders")] + ([] if ack is None else [(ack, "msp.acknowledge")])
    ):
        run.at(10 + offset).step(key)
    run.at(3000).revert("stop-web").at(3001).probe("web", "up").at(3010).end()
    return run.run_dir


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_each_improvement_is_specific_with_a_named_owner_and_a_due_date(tmp_path: Path, home: Path) -> None:
    run_dir = drill(
        tmp_path, "20260302T090000Z-web-down-0001", datetime(2026, 3, 2, 9, tzinfo=UTC), None, 1980
    )
    debrief = debrief_of_run(run_dir, tmp_path)
    plan = {i.subject: i for i in debrief.improvements}
    orders = plan["step:client.paper_orders"]
    assert orders.action == (
        "Client: Start the paper order process within 20m00s — it took 33m00s; "
        "rehearse this step with the people who do it and remove what held it up."
    )
    assert (orders.owner_party, orders.owner, orders.due_by) == ("client", "Priya Shah", "2026-04-01")
    ack = plan["step:msp.acknowledge"]
    assert ack.action.startswith("MSP: Acknowledge the alert within 2m00s — it was not done;")
    assert (ack.owner, ack.due_by) == ("Alex Moreau", "2026-03-16")
    html = render_text(debrief, "html", RenderOptions(audience="client"))
    assert "Priya Shah · by 2026-04-01" in html
    zh = render_text(debrief, "md", RenderOptions(lang="zh-CN"))
    assert "本次用了 33分00秒" in zh


def test_list_assign_close_reopen_with_who_and_why(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    first = drill(runs, "20260302T090000Z-web-down-0001", datetime(2026, 3, 2, 9, tzinfo=UTC), 300, 1980)
    write_debrief(first)
    runner = CliRunner()
    listed = runner.invoke(cli(), ["improvements", "list", "--client", CLIENT])
    assert listed.exit_code == 0, listed.output
    assert "20260302T090000Z-web-down-0001#F1" in listed.output and "Priya Shah" in listed.output

    steps = [
        [
            "assign",
            "--client",
            CLIENT,
            "20260302T090000Z#F2",
            "--owner",
            "Mei Chen",
            "--by",
            "alex",
            "--note",
            "sponsor",
        ],
        ["close", "--client", CLIENT, "20260302T090000Z#F1", "--by", "alex", "--note", "pager rota fixed"],
        ["close", "--client", CLIENT, "20260302T090000Z#F2", "--by", "mei", "--note", "trained staff"],
        ["reopen", "--client", CLIENT, "20260302T090000Z#F2", "--by", "priya", "--note", "new staff"],
    ]
    for args in steps:
        result = runner.invoke(cli(), ["improvements", *args])
        assert result.exit_code == 0, result.output
    twice = runner.invoke(
        cli(),
        ["improvements", "close", "--client", CLIENT, "20260302T090000Z#F1", "--by", "x", "--note", "y"],
    )
    assert twice.exit_code == 2 and "already closed" in twice.output
    unknown = runner.invoke(
        cli(), ["improvements", "close", "--client", CLIENT, "nope#F9", "--by", "x", "--note", "y"]
    )
    assert unknown.exit_code == 2 and "no such item" in unknown.output

    items = {i.finding: i for i in ImprovementStore(CLIENT).plans()[0].items}
    assert items["F1"].status == "closed" and items["F1"].closed_note == "pager rota fixed"
    assert items["F2"].status == "open" and items["F2"].owner == "Mei Chen"
    assert [(e.change, e.by, e.note) for e in items["F2"].log] == [
        ("assign", "alex", "sponsor"),
        ("close", "mei", "trained staff"),
        ("reopen", "priya", "new staff"),
    ]
    write_debrief(first)  # writing the drill's debrief again keeps what people changed
    again = {i.finding: i for i in ImprovementStore(CLIENT).plans()[0].items}
    assert again == items

    # the next drill: closed items are shown as closed, open ones re-tested
    second = drill(runs, "20270301T090000Z-web-down-0002", datetime(2027, 3, 1, 9, tzinfo=UTC), 100, 2400)
    debrief = write_debrief(second)
    follow = {f["finding"]: f for f in debrief["follow_up"]}
    assert (follow["F1"]["result"], follow["F1"]["closed_note"]) == ("closed", "pager rota fixed")
    assert (follow["F2"]["result"], follow["F2"]["owner"]) == ("worse", "Mei Chen")
    md = (second / "debrief.md").read_text()
    assert "| closed |" in md and "| worse |" in md
    # settled by that drill: the third drill carries only the second drill's own items
    third = drill(runs, "20280301T090000Z-web-down-0003", datetime(2028, 3, 1, 9, tzinfo=UTC), 60, 600)
    later = write_debrief(third)
    assert {f["from_run"] for f in later["follow_up"]} == {"20270301T090000Z-web-down-0002"}


def test_plan_rows_and_changes_are_pure(tmp_path: Path, home: Path) -> None:
    runs = tmp_path / "runs"
    write_debrief(
        drill(runs, "20260302T090000Z-web-down-0001", datetime(2026, 3, 2, 9, tzinfo=UTC), None, 1980)
    )
    plans = list(ImprovementStore(CLIENT).plans())
    rows = plan_rows(tuple(plans), today=date(2026, 3, 20))
    assert [(r.ref.split("#")[1], r.state) for r in rows] == [("F1", "overdue"), ("F2", "open")]
    with pytest.raises(InputError, match="RUN#FINDING"):
        apply_change(plans, "F1", "close", "alex")
    with pytest.raises(InputError, match="--owner"):
        apply_change(plans, "2026#F1", "assign", "alex")
    changed = apply_change(plans, "2026#F1", "close", "alex", "done", now=datetime(2026, 3, 5, tzinfo=UTC))
    assert plans[0].items[0].status == "open"  # the input is not modified
    assert changed[0].items[0].log[0].at == "2026-03-05T00:00:00Z"
    assert json.loads(json.dumps(changed[0].to_json()))["items"][0]["status"] == "closed"
